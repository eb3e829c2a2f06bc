/**
 * What `percpu-sim run` says and exits with when a run times out, cannot boot, or returns
 * values: a bound given with --timeout is exact, every time-out exits 3 with the CPU table,
 * a machine that cannot boot is refused before any thread starts, and run()'s results are
 * in the text and the JSON report.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = (args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 60_000 });

let dir = '';
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'percpu-sim-outcomes-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run: time-outs', () => {
  it('--timeout is exact whatever the CPU count, and the report keeps the CPU table', () => {
    const hang = file(
      'hang.mjs',
      "export default { name: 'hang', description: 'd', defaults: {}, async run(cpu) { if (cpu.cpu === 1) await new Promise(() => {}); return cpu.cpu; } };\n",
    );
    const t = Date.now();
    const r = cli(['run', hang, '--cpus', '4', '--timeout', '2', '--seed', '1']);
    expect(Date.now() - t).toBeLessThan(20_000);
    expect(r.status).toBe(3);
    expect(r.stdout).toContain(
      '== verdict: TIMEOUT (1 violation) ==\n  workers/timeout: cpu 1: timed out: made no progress for 2 s\n',
    );
    expect(r.stdout).toContain('\n== CPUs ==\n');
    expect(r.stdout).toMatch(
      /\n {2}1 {4}0 +\d+ +- +- +- +- +- +- {2}CpuFailure: cpu 1: timed out: made no progress for 2 s\n/,
    );
    expect(r.stdout).toMatch(/\n {2}3 {4}0 +\d+ +0 +0 +0 +0 +0 +\d+ {2}ok\n/);
  });

  it('a barrier that nobody else will reach is a time-out (exit 3) that names who never came', () => {
    const away = file(
      'away.mjs',
      "export default { name: 'away', description: 'd', defaults: {}, async run(cpu) { if (cpu.cpu !== 2) await cpu.barrier(); return 1; } };\n",
    );
    const r = cli(['run', away, '--cpus', '3', '--timeout', '2', '--seed', '1']);
    expect(r.status).toBe(3);
    expect(r.stdout).toContain(
      '== verdict: TIMEOUT (1 violation) ==\n  workers/timeout: cpus 0, 1 timed out at a barrier: no CPU made progress for 2 s; cpu 2 never reached it\n',
    );
  });
});

describe('run: a machine that cannot boot', () => {
  it('is refused like boot refuses it, before any thread starts', () => {
    const t = Date.now();
    const r = cli(['run', 'counter', '--cpus', '1024', '--memory', '16', '--arg', 'adds=1']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /\npercpu-sim run: Failed to initialize percpu areas \(embed first chunk: error -12\): boot memory ran out \(1024 CPUs, 16 MiB of memory over 1 node\(s\)\); give the machine more memory with --memory\.\n$/,
    );
    // no CPU thread was started
    expect(r.stderr).not.toContain('run: 1024 CPUs');
    expect(Date.now() - t).toBeLessThan(15_000);
  });
});

describe('run: what run() returned', () => {
  it('is in the text report, CPUs with the same value on one line, and in the JSON report per CPU', () => {
    const text = cli(['run', 'counter', '--cpus', '4', '--seed', '2', '--arg', 'adds=1000']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/\n== run\(\) returned ==\ncpus 0-3: \{"ptr":\d+,"adds":1000\}\n/);
    const json = cli(['run', 'counter', '--cpus', '2', '--seed', '2', '--arg', 'adds=1000', '--json']);
    const report = JSON.parse(json.stdout) as { cpus: { cpu: number; result: { adds: number } }[] };
    expect(report.cpus.map((c) => [c.cpu, c.result.adds])).toEqual([
      [0, 1000],
      [1, 1000],
    ]);
  });

  it('a bigint is written as its digits, and distinct values get a line each', () => {
    const big = file(
      'big.mjs',
      "export default { name: 'big', description: 'd', defaults: {}, async run(cpu) { return { cpu: cpu.cpu, v: 2n ** 64n }; } };\n",
    );
    const text = cli(['run', big, '--cpus', '2', '--seed', '1']);
    expect(text.stdout).toContain(
      '\n== run() returned ==\ncpu 0: {"cpu":0,"v":"18446744073709551616n"}\ncpu 1: {"cpu":1,"v":"18446744073709551616n"}\n',
    );
    const json = JSON.parse(cli(['run', big, '--cpus', '2', '--seed', '1', '--json']).stdout) as {
      cpus: { result: unknown }[];
    };
    expect(json.cpus[1]!.result).toEqual({ cpu: 1, v: '18446744073709551616' });
  });
});
