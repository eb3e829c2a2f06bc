/**
 * A failing run's report shows its cause: a count in the verdict, violations in the order
 * they happened, the CPU that was caught not "ok", the reclaim worker named one way, event
 * lines with the task names schedules use, a write just past an area naming that area, a
 * workload's error with its file and line, and stress --workers with a header.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Violation } from '../../src/check/violation.ts';
import { inOrder } from '../../src/report/run-report.ts';
import { isolationError, sim } from '../check/sim.ts';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });

let dir = '';
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'percpu-sim-verdicts-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a failing verdict', () => {
  it('counts the violations and marks the CPU they were found on', () => {
    const r = cli('run', 'isolation-bug', '--seed', '1');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('\n== verdict: FAIL (3 violations) ==\n');
    const cpus = r.stdout.split('\n== CPUs ==\n')[1]!.split('\n').slice(1, 3);
    expect(cpus[0]).toMatch(/ ok$/);
    expect(cpus[1]).toMatch(/ 3 violations$/);
  });

  it('lists violations in the order they happened', () => {
    const v = (checker: Violation['checker'], tick: number): Violation => ({
      checker,
      kind: 'k',
      cpu: 0,
      tick,
      message: `${checker} at ${tick}`,
    });
    const told = [v('kernel-bug', 9), v('isolation', 3), v('locks', 9), v('races', 3)];
    expect(inOrder(told).map((x) => x.message)).toEqual([
      'isolation at 3',
      'races at 3',
      'kernel-bug at 9',
      'locks at 9',
    ]);
  });

  it('names the reclaim worker kworker everywhere', () => {
    const r = cli('run', 'lock-mutant', '--seed', '1');
    expect(r.status).toBe(1);
    expect(r.stdout).not.toContain('cpu -1');
    expect(r.stdout).toMatch(
      /locks\/sleep-without-mutex: task \d+ \(kworker\) runs pcpu_depopulate_chunk without pcpu_alloc_mutex/,
    );
  });

  it('names tasks in the events before a violation as the schedule does', () => {
    const schedule = '0.64,0.64,0.64,0.64,0.64,0.64,0.64,0.64,0.64,1.0,1.0,1.0,1.0,1.0,1.0';
    const r = cli('stress', '--scenario', 'extend-vs-free', '--mutant', 'extend-stale-walk', '--schedule', schedule);
    expect(r.status).toBe(1);
    const events = r.stdout.split('events before the first violation:\n')[1]!.split('\nseed:')[0]!.split('\n');
    expect(events.length).toBeGreaterThan(5);
    for (const e of events) expect(e).toMatch(/^ {2}#\d+ t\d+ (cpu\d+|kworker) task (\d+|k)\.\d+ /);
    expect(events.at(-1)).toMatch(/^ {2}#\d+ t\d+ cpu0 task 0\.64 BUG LIST_CORRUPTION: /);
    expect(r.stdout).toContain(' task 1.0 ');
  });

  it('names the area a write just past its end belongs to', async () => {
    const s = sim();
    const c0 = s.cpu(0);
    const p = await c0.alloc_percpu(16, 8);
    const v = s.tracker.describe(isolationError(() => c0.write(c0.this_cpu_ptr(p) + 16, 1)).fault);
    expect(v).toMatchObject({
      kind: 'out-of-bounds',
      unitCpu: 0,
      allocation: { id: 2, size: 16, chunk: 0, offset: 28192, live: true },
    });
    expect(v.message).toMatch(
      /^out-of-bounds: cpu 0 wrote 4 bytes at [0-9a-f]{16} in cpu 0's copy, allocation #2 \(16 bytes at chunk 0 offset 28192, made by cpu 0\): wrote just past the end of its area \(seed 77\)$/,
    );
  });

  it("gives a workload's error its file and line", () => {
    const file = join(dir, 'thrower.ts');
    writeFileSync(
      file,
      [
        "import type { Workload } from 'percpu-sim';",
        '',
        'const w: Workload = {',
        "  name: 'thrower',",
        '  defaults: {},',
        '  async run(cpu) {',
        "    if (cpu.cpu === 1) throw new Error('boom');",
        '    return 1;',
        '  },',
        '};',
        'export default w;',
        '',
      ].join('\n'),
    );
    const r = cli('run', file, '--cpus', '2', '--seed', '1');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`\n  workload/error: cpu 1: Error: boom (at ${file}:7)\n`);
  });

  it('prints an oops once, in the verdict; the CPU table names it', () => {
    const file = join(dir, 'oops.ts');
    writeFileSync(
      file,
      [
        "import type { Workload } from 'percpu-sim';",
        "const w: Workload = { name: 'oops', defaults: {}, async run(cpu) {",
        '  if (cpu.cpu === 1) cpu.write(0x7000_0000_0000, 1);',
        '  return 1;',
        '} };',
        'export default w;',
        '',
      ].join('\n'),
    );
    const r = cli('run', file, '--cpus', '2', '--seed', '1');
    expect(r.status).toBe(1);
    expect(r.stdout.match(/unable to handle kernel paging request/g)).toHaveLength(1);
    expect(r.stdout.split('\n== CPUs ==\n')[1]!.split('\n')[2]).toMatch(/ CpuFault \(in the verdict\)$/);
    expect(r.stdout).toContain(
      `\n  workload/error: cpu 1: CpuFault: BUG: unable to handle kernel paging request at 0000700000000000 (cpu 1, write: address outside the direct map and the vmalloc range) (at ${file}:3)\n`,
    );
  });

  it('stress --workers says what it ran, and how many violations', () => {
    const r = cli('stress', '--workers', '--mutant', 'populate-no-zero', '--seed', '2', '--ops', '300');
    expect(r.status).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(
      'percpu-sim stress --workers: 3 CPUs on 3 worker threads, 2 node(s), vm, seed 2, mutant populate-no-zero',
    );
    expect(lines[1]).toMatch(/^verdict: VIOLATION \(\d+\)$/);
    const clean = cli('stress', '--workers', '--seed', '2', '--ops', '30');
    expect(clean.stdout.split('\n').slice(0, 3)).toEqual([
      'percpu-sim stress --workers: 3 CPUs on 3 worker threads, 2 node(s), vm, seed 2',
      'verdict: CLEAN',
      'seed: 2',
    ]);
  });
});
