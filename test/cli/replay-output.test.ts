/**
 * Where a replay's output goes: a pipe whose reader stops for a while gets every byte, in
 * order (the replay waits for it, the blocks it holds are never written over); a device that
 * refuses the output ends the run with status 2 and a line that says so; drive() waits for
 * what its `ready` hook gives before it goes on.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { drive } from '../../src/cli/common.ts';
import { replayText } from '../../src/trace/replay.ts';
import { randomTrace } from '../replay/random-trace.ts';

const dir = mkdtempSync(join(tmpdir(), 'pcpu-replay-output-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// about 1.6 MB of output: six blocks and more, and more than a pipe holds
const text = randomTrace(5, 36_000);
const file = join(dir, 'trace.jsonl');
writeFileSync(file, text);
const want: string[] = [];
replayText(text, (l) => want.push(l));

describe('replay output', () => {
  it('gives a pipe whose reader stops for a while every byte, in order', async () => {
    const child = spawn(process.execPath, ['bin/percpu-sim.mjs', 'replay', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // the reader takes the first bytes, then nothing for a second, then the rest
    child.stdout.once('data', (d: Buffer) => {
      chunks.push(d);
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), 1000);
      child.stdout.on('data', (more: Buffer) => chunks.push(more));
    });
    const status = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('replay did not end within 60 s'));
      }, 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(want.join('\n').length).toBeGreaterThan(6 << 18);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(want.join('\n') + '\n');
  }, 90_000);

  it.skipIf(!existsSync('/dev/full'))('ends with status 2 and says so when its output cannot be written', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const r = spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'replay', file], {
        stdio: ['ignore', full, 'pipe'],
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.stderr).toBe(
        'percpu-sim replay: could not write to standard output (ENOSPC); the report is lost or cut short\n',
      );
      expect(r.status).toBe(2);
    } finally {
      closeSync(full);
    }
  });

  it('drive() goes on only once what `ready` gives has settled', async () => {
    const seen: string[] = [];
    let release = (): void => {};
    function* steps(): Generator<number, string> {
      seen.push('first');
      yield 1;
      seen.push('second');
      yield 2;
      return 'done';
    }
    let waits = 0;
    const run = drive(steps(), undefined, () =>
      waits++ === 0 ? new Promise<void>((resolve) => (release = resolve)) : null,
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual(['first']);
    release();
    expect(await run).toBe('done');
    expect(seen).toEqual(['first', 'second']);
  });
});
