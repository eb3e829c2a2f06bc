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
import { Prng } from '../../src/util/prng.ts';

const source = fileURLToPath(new URL('../../bench/ref/percpu-ref.c', import.meta.url));
let dir = '';
let ref = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pcpu-ref-'));
  ref = join(dir, 'percpu-ref');
  execFileSync('cc', ['-O2', '-o', ref, source]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function trace(seed: number, ops: number): string {
  const r = new Prng(seed);
  const cpus = r.pick([1, 2, 3, 4, 8]);
  const nodes = cpus > 1 && r.chance(0.3) ? r.pick([2, 4]) : 1;
  const atom = r.chance(0.2) ? 1 << 21 : 4096;
  const reserved = r.chance(0.7) ? r.pick([4096, 8192, 12288]) : 0;
  const lines = [
    `{"op":"boot","static_size":${r.int(4000, 90000)},"reserved_size":${reserved},"dyn_size":${r.pick([0, 8192, 20480, 30000])},"cpus":${cpus},"nodes":${nodes},"atom_size":${atom}}`,
  ];
  const live: string[] = [];
  const slabAt = r.int(0, Math.floor(ops / 4));
  const maxSize = r.pick([64, 512, 4096, 40000]);
  let n = 0;
  for (let i = 0; i < ops; i++) {
    if (i === slabAt) lines.push('{"op":"slab_online"}');
    if (i === slabAt + 5) lines.push('{"op":"init_late"}');
    if (live.length && r.chance(0.42)) {
      const k = r.int(0, live.length - 1);
      lines.push(`{"op":"free","id":"${live[k]}"}`);
      live.splice(k, 1);
    } else {
      const id = `x${n++}`;
      const size = r.chance(0.02)
        ? r.pick([0, 65537])
        : r.chance(0.9)
          ? r.int(1, Math.min(maxSize, 300))
          : r.int(1, maxSize);
      // now and then an alignment that is not a power of two: 2.6.36 rounds it with ALIGN()'s mask
      const align = r.chance(0.01) ? 8192 : r.chance(0.03) ? r.int(1, 200) : 1 << r.int(0, r.chance(0.1) ? 12 : 6);
      const res = r.chance(0.08) ? ',"reserved":true' : '';
      lines.push(`{"op":"alloc","id":"${id}","size":${size},"align":${align}${res}}`);
      live.push(id);
    }
  }
  return lines.join('\n') + '\n';
}

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
