/**
 * Whole runs on real worker threads (small counts, every wait bounded): the examples'
 * results are exact, runs are reproducible from their seed, a recorded multi-CPU log
 * replays to the same final state, and a misbehaving CPU fails the run with a clear message.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { allocatorFingerprint, replayEventLog } from '../../src/harness/log-replay.ts';
import { runWorkload } from '../../src/smp/run.ts';

const fixture = fileURLToPath(new URL('../fixtures/crash.ts', import.meta.url));

describe('runs on worker threads', () => {
  it('counter: the sum over all units equals the number of increments', async () => {
    const r = await runWorkload({ workload: 'counter', seed: 1, cpus: 3, args: { adds: 100_000 } });
    expect(r.violations).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.cpus.map((c) => c.stats.writes)).toEqual([100_000, 100_000, 100_000]);
    expect(new Set(r.cpus.map((c) => c.threadId)).size).toBe(3);
    expect(r.shutdown).toMatchObject({ leaks: [], pagesRestored: true });
  });

  it('churn: every unit holds only its own CPU pattern, and nothing leaks', async () => {
    const r = await runWorkload({ workload: 'churn', seed: 11, cpus: 3, args: { ops: 150 } });
    expect(r.violations).toEqual([]);
    expect(r.cpus.every((c) => c.stats.allocs > 20)).toBe(true);
    expect(r.shutdown).toMatchObject({ leaks: [], pagesRestored: true });
  });

  it('lifecycle: early budget, slab online, late init, in that order', async () => {
    const r = await runWorkload({ workload: 'lifecycle', seed: 2, cpus: 2 });
    expect(r.violations).toEqual([]);
    const states = r.log.flatMap((e) => (e.type === 'lifecycle' ? [e.state] : []));
    expect(states).toEqual(['boot', 'early', 'slabOnline', 'lateInit', 'running', 'draining', 'shutdown']);
    expect(r.dmesg).toContain('PERCPU: allocation failed, size=4 align=4, failed to extend area map');
  });

  it('a free from CPU 1 completes while CPU 0 sleeps in populate (real workers)', async () => {
    // populate sleeps 200000 scheduler ticks (one per event-loop turn, some 400 ms or more),
    // and CPU 1 frees 30 ms after the barrier: the order below does not hang on a close race,
    // even on a loaded machine
    const r = await runWorkload({
      workload: fileURLToPath(new URL('../fixtures/free-during-populate.ts', import.meta.url)),
      seed: 1,
      cpus: 2,
      minDelay: 200_000,
      maxDelay: 200_000,
    });
    expect(r.violations).toEqual([]);
    const i = (pred: (e: (typeof r.log)[number]) => boolean) => r.log.findIndex(pred);
    const aTask = r.log.find(
      (e) => e.type === 'arrive' && e.req.kind === 'alloc' && e.cpu === 0 && e.req.size === 21000,
    )!.task;
    const populate = i((e) => e.type === 'sleep' && e.task === aTask && e.at === 'pcpu_populate_chunk');
    const aDone = i((e) => e.type === 'done' && e.task === aTask);
    const freeArrive = i((e) => e.type === 'arrive' && e.req.kind === 'free' && e.cpu === 1);
    const freeDone = i((e) => e.type === 'done' && e.kind === 'free' && e.cpu === 1);
    expect(populate).toBeGreaterThan(0);
    expect(freeArrive).toBeGreaterThan(populate);
    expect(freeDone).toBeLessThan(aDone);
    expect(r.violations).toEqual([]);
  });

  it('one CPU: the same seed gives the same event log', async () => {
    // small areas only: everything fits the first chunk, so no reclaim work runs in the
    // background while the CPU's next request is on its way
    const args = { ops: 60, maxSize: 200 };
    const a = await runWorkload({ workload: 'churn', seed: 5, cpus: 1, args });
    const b = await runWorkload({ workload: 'churn', seed: 5, cpus: 1, args });
    expect(a.log.some((e) => e.type === 'sleep')).toBe(false);
    expect(a.verdict).toBe('pass');
    expect(b.log).toEqual(a.log);
  });

  it('a recorded multi-CPU log replays to the same final state', async () => {
    const r = await runWorkload({ workload: 'churn', seed: 21, cpus: 3, args: { ops: 80 }, policy: 'random' });
    expect(r.verdict).toBe('pass');
    const replay = replayEventLog(
      {
        seed: 21,
        cpus: 3,
        nodes: 1,
        backend: 'vm',
        fc: 'embed',
        memoryMiB: 64,
        mutant: null,
        failRate: 0,
        policy: 'random',
        maxDelay: 4,
      },
      r.log,
    );
    const done = (log: typeof r.log) =>
      log.flatMap((e) => (e.type === 'done' ? [[e.task, e.cpu, JSON.stringify(e.reply)]] : []));
    expect(done(replay.log)).toEqual(done(r.log));
    expect(allocatorFingerprint(replay.pc)).toBe(r.fingerprint);
  });

  it.each([
    ['throw', 'cpu 1: Error: boom from the workload'],
    ['exit', 'cpu 1: worker thread died'],
    ['hang', 'cpu 1: timed out: made no progress for 3 s'],
    ['oops', 'cpu 1: CpuFault: BUG: unable to handle kernel paging request'],
  ])('a CPU that does "%s" fails the run with a clear message', async (how, message) => {
    const t = Date.now();
    const r = await runWorkload({ workload: fixture, seed: 3, cpus: 2, args: { how }, phaseTimeoutMs: 3000 });
    // a CPU that stops making progress is a time-out, its own verdict
    expect(r.verdict).toBe(how === 'hang' ? 'timeout' : 'fail');
    expect(r.violations.map((v) => v.message).join('\n')).toContain(message);
    expect(Date.now() - t).toBeLessThan(20_000);
  });
});

describe('run command line', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 60_000 });

  it('runs an example and prints a JSON report a program can read', () => {
    const r = cli('run', 'counter', '--cpus', '2', '--seed', '9', '--arg', 'adds=1000', '--json');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ workload: 'counter', seed: 9, verdict: 'pass', config: { cpus: 2, backend: 'vm' } });
    expect(report.bootLines[0]).toMatch(/^PERCPU: Embedded 12 pages\/cpu @[0-9a-f]{16} s20000 r8192 d20960 u65536$/);
    expect(report.rerun).toBe(
      'percpu-sim run counter --seed 9 --cpus 2 --nodes 1 --backend vm --memory 64 --arg adds=1000',
    );
  });

  it('saves a run on worker threads and replays its allocator side exactly, without workers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pcpu-run-'));
    const file = join(dir, 'run.json');
    try {
      expect(cli('run', 'churn', '--cpus', '3', '--seed', '12', '--arg', 'ops=100', '--save', file).status).toBe(0);
      const r = cli('replay-run', file);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(
        /^replayed \d+ allocator requests of churn \(seed 12\) without workers\nreproduced: the same replies and the same final allocator state\nheld against 2\.6\.36: every operation as 2\.6\.36 does it\n$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad flags and unknown workloads with exit status 2', () => {
    const bad = cli('run', 'counter', '--cpus', 'zero');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--cpus must be a whole number from 1 to 1024, got "zero"');
    const none = cli('run', 'no-such-example');
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no workload "no-such-example"');
    const unknown = cli('run', '--frobnicate');
    expect(unknown.status).toBe(2);
    expect(cli('run', '--help').stdout).toContain('Usage: percpu-sim run [EXAMPLE|FILE] [options]');
  });
});
