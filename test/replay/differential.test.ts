/**
 * Differential test of placement: the TypeScript replayer and an independent C build of the
 * same 2.6.36 algorithm (bench/ref/percpu-ref.c) read the same random traces and must write
 * identical lines: every chunk number, offset and failure. The traces cover early boot
 * (before slab_online), the reserved chunk, reclaim, map extension, illegal requests, tails
 * and heads of every size, several CPU counts, NUMA groups and large atoms.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayText } from '../../src/trace/replay.ts';
import { randomTrace as trace } from './random-trace.ts';

const source = fileURLToPath(new URL('../../bench/ref/percpu-ref.c', import.meta.url));
let dir = '';
let ref = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pcpu-ref-'));
  ref = join(dir, 'percpu-ref');
  execFileSync('cc', ['-O2', '-o', ref, source]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('placement matches an independent C build of the algorithm', () => {
  it.each(Array.from({ length: 40 }, (_, i) => i + 1))('random trace %i', (seed) => {
    const text = trace(seed, seed > 30 ? 20_000 : 2500);
    const file = join(dir, `t${seed}.jsonl`);
    writeFileSync(file, text);
    const out: string[] = [];
    replayText(text, (l) => out.push(l), { memoryBytes: 256 << 20 });
    const expected = execFileSync(ref, [file], { encoding: 'utf8', maxBuffer: 1 << 28 })
      .trimEnd()
      .split('\n');
    expect(out.length).toBe(expected.length);
    for (let i = 0; i < out.length; i++)
      if (out[i] !== expected[i]) expect(`line ${i + 1}: ${out[i]}`).toBe(`line ${i + 1}: ${expected[i]}`);
  });
});
