/**
 * ftrace input that is not a text trace: a gzip file is read through, trace-cmd's binary
 * trace.dat is named with the command that gives its text, and bytes that are not text are
 * counted as such rather than as comments.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFtrace } from '../../src/trace/ftrace.ts';

const cli = (args: string[], input?: Buffer) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'ftrace', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    ...(input !== undefined ? { input } : {}),
  });

const PIPE = 'test/fixtures/ftrace/pipe-6.1.txt';
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'percpu-sim-ftrace-input-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// bytes that decode to no text line: a fixed pseudo-random sequence
function noise(n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

describe('ftrace input', () => {
  it('a gzip-compressed trace reads as its text', () => {
    const gz = join(dir, 'pipe.txt.gz');
    writeFileSync(gz, gzipSync(readFileSync(PIPE)));
    const plain = cli([PIPE]);
    const zipped = cli([gz]);
    expect(zipped.status).toBe(0);
    expect(zipped.stdout).toBe(plain.stdout.replace(PIPE, gz));
    const piped = cli(['-', '--to-jsonl'], gzipSync(readFileSync(PIPE)));
    expect(piped.status).toBe(0);
    expect(piped.stdout).toBe(cli([PIPE, '--to-jsonl']).stdout);
  });

  it("trace-cmd's trace.dat says to run trace-cmd report first", () => {
    const dat = join(dir, 'trace.dat');
    writeFileSync(dat, Buffer.concat([Buffer.from([0x17, 0x08, 0x44]), Buffer.from('tracing6\0'), noise(2000)]));
    const r = cli([dat]);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `percpu-sim ftrace: ${dat} is a trace-cmd binary file (trace.dat); give its text: trace-cmd report -i ${dat} > trace.txt`,
    );
    const xz = join(dir, 'trace.xz');
    writeFileSync(xz, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2]));
    expect(cli([xz]).stderr.split('\n')[0]).toBe(
      `percpu-sim ftrace: ${xz} is xz-compressed; decompress it first (xz -dk ${xz})`,
    );
  });

  it('random bytes are counted as unreadable lines, not comments', () => {
    const bin = join(dir, 'random.bin');
    const bytes = noise(4000);
    writeFileSync(bin, bytes);
    const lines = bytes.toString('utf8').split('\n').length;
    const r = cli([bin]);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `percpu-sim ftrace: ${bin} is not a text trace (0 lines of other events, 0 comment lines, ${lines} unreadable or binary lines); give the text that tracefs or trace-cmd report prints`,
    );
    const mixed = parseFtrace(
      `# tracer: nop\n${'\u0000\u0001garbage'}\nok-1 [000] .... 1.000000: sched_switch: x\n\ufffd\ufffd\n`,
    );
    expect(mixed).toMatchObject({ comments: 1, otherEvents: 1, unreadable: 2 });
  });
});
