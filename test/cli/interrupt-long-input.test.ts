/**
 * ftrace and replay on a long input: progress on standard error while ftrace reads and
 * replays, and on SIGINT a line that says where they stopped, exit 130, and for replay every
 * result before that line written. In child processes with bounded waits.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir = '';
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'percpu-sim-long-input-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the command, sends SIGINT once `ready` holds for what it has written, and waits for the end. */
function interruptWhen(
  args: string[],
  ready: (out: { stdout: string; stderr: string }) => boolean,
): Promise<{ code: number | null; stdout: string; stderr: string; signalled: boolean }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/percpu-sim.mjs', ...args]);
    const got = { stdout: '', stderr: '' };
    let signalled = false;
    const check = () => {
      if (!signalled && ready(got)) {
        signalled = true;
        p.kill('SIGINT');
      }
    };
    p.stdout.on('data', (d: Buffer) => ((got.stdout += d.toString()), check()));
    p.stderr.on('data', (d: Buffer) => ((got.stderr += d.toString()), check()));
    const limit = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`no end within 60 s: ${got.stderr}`));
    }, 60_000);
    p.on('close', (code) => {
      clearTimeout(limit);
      resolve({ code, ...got, signalled });
    });
  });
}

describe('a long input', () => {
  it('ftrace shows its progress and says where it stopped on SIGINT', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 400_000; i++)
      lines.push(
        `  kworker/0:1-10 [000] d..1.  ${(i / 1000).toFixed(6)}: percpu_alloc_percpu: reserved=0 is_atomic=0 size=8 align=8 base_addr=00000000fa0d002b off=8192 ptr=${(0x1000000 + i).toString(16).padStart(16, '0')}`,
      );
    const file = join(dir, 'long.trace');
    writeFileSync(file, lines.join('\n') + '\n');
    const r = await interruptWhen(['ftrace', file], (o) => o.stderr.includes('reading the trace'));
    expect(r.signalled).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^\[#[#.]{19}\] 65536\/400000 reading the trace\n/);
    expect(r.stderr).toMatch(
      /\npercpu-sim ftrace: interrupted \(SIGINT\); stopped while (reading line \d+ of 400000|replaying operation \d+ of 400003 through 2\.6\.36); nothing was compared\n$/,
    );
    expect(r.stdout).toBe('');
  });

  it('replay says at which line it stopped on SIGINT, with every result before it written', async () => {
    const lines = ['{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}', '{"op":"slab_online"}'];
    for (let i = 0; i < 600_000; i++)
      lines.push(i % 2 ? `{"op":"free","id":"a${i - 1}"}` : `{"op":"alloc","id":"a${i}","size":16,"align":8}`);
    const file = join(dir, 'long.jsonl');
    writeFileSync(file, lines.join('\n') + '\n');
    const r = await interruptWhen(['replay', file], (o) => o.stdout.length > 0);
    expect(r.signalled).toBe(true);
    expect(r.code).toBe(130);
    const m =
      /\npercpu-sim replay: interrupted \(SIGINT\); stopped at line (\d+) of (.*); the results of the lines before it are written\n$/.exec(
        r.stderr,
      );
    expect(m?.[2]).toBe(file);
    // the replay stops where it gives the event loop a turn: every 65536 lines, and after an
    // output block the pipe has not taken at once
    const at = Number(m![1]);
    expect(at).toBeGreaterThan(2);
    const out = r.stdout.trimEnd().split('\n');
    expect(out).toHaveLength(at - 1);
    // the last result is line at - 1, operation at - 4 after the boot and slab lines
    const op = at - 4;
    expect(out.at(-1)).toBe(
      op % 2 ? `{"op":"free","id":"a${op - 1}"}` : `{"op":"alloc","id":"a${op}","chunk":0,"offset":28192}`,
    );
  });
});
