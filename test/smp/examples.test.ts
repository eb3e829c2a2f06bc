/**
 * Every example runs and ends as its header says: the demonstrations of correct behaviour
 * pass, and the two that commit bugs on purpose fail with exactly the reports they promise.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exampleNames } from '../../src/cli/run.ts';
import { runWorkload } from '../../src/smp/run.ts';

describe('examples', () => {
  it.each([
    ['demo', { adds: 20_000, ops: 80 }],
    ['modules', { loads: 30 }],
    ['numa', {}],
    ['km', {}],
    ['stress', { ops: 150 }],
  ] as const)('%s passes', async (name, args) => {
    const r = await runWorkload({ workload: name, seed: 6, args: { ...args } });
    expect(r.violations).toEqual([]);
    expect(r.shutdown?.pagesRestored).toBe(true);
  });

  it('numa groups CPUs by node and backs each unit with its own node', async () => {
    const r = await runWorkload({ workload: 'numa', seed: 6, cpus: 8, nodes: 4 });
    expect(r.violations).toEqual([]);
    expect(r.bootLines.at(-1)).toBe('pcpu-alloc: [0] 0 [0] 1 [1] 2 [1] 3 [2] 4 [2] 5 [3] 6 [3] 7 ');
  });

  it.each([
    [32, 226],
    [64, 712],
  ])(
    'numa runs on %i CPUs and 4 nodes with the memory it asks for (%i MiB)',
    async (cpus, mib) => {
      const r = await runWorkload({
        workload: 'numa',
        seed: 6,
        cpus,
        nodes: 4,
        cpusPerThread: 16,
        phaseTimeoutMs: 60_000,
      });
      expect(r.config.memoryMiB).toBe(mib);
      expect(r.violations).toEqual([]);
      expect(r.verdict).toBe('pass');
    },
    60_000,
  );

  it('a CPU count whose memory no machine has is refused before the run, naming the need', async () => {
    await expect(runWorkload({ workload: 'numa', seed: 6, cpus: 256, nodes: 4 })).rejects.toThrow(
      'the workload "numa" needs about 10432 MiB of memory on 256 CPUs, more than the largest machine (--memory 4096); run it on fewer CPUs or with smaller --arg values',
    );
  });

  it('km says what a chunk wastes at any CPU count', async () => {
    for (const cpus of [4, 5]) {
      const r = await runWorkload({ workload: 'km', seed: 6, cpus });
      expect(r.violations).toEqual([]);
      expect(r.dmesg.filter((l) => l.includes('wasting'))).toEqual(
        cpus === 5 ? ['percpu: wasting 48 pages per chunk'] : [],
      );
    }
  });

  it('isolation-bug reports its three violations, each with the allocation it hit', async () => {
    const r = await runWorkload({ workload: 'isolation-bug', seed: 6 });
    expect(r.verdict).toBe('fail');
    const isolation = r.violations.filter((v) => v.checker === 'isolation');
    const size = (v: (typeof isolation)[number]) => (v.data?.allocation as { size: number } | null)?.size;
    expect(isolation.map((v) => [v.kind, v.cpu, v.data?.unitCpu, size(v)])).toEqual([
      ['foreign-unit', 1, 0, 8],
      ['use-after-free', 1, 1, 32],
      ['out-of-bounds', 1, 1, 16],
    ]);
  });

  it('lock-mutant shows the lock checker catching the 2009 reclaim bug', async () => {
    const r = await runWorkload({ workload: 'lock-mutant', seed: 6 });
    expect(r.verdict).toBe('fail');
    expect(r.config.mutant).toBe('reclaim-drops-mutex');
    const locks = r.violations.filter((v) => v.checker === 'locks');
    expect(locks[0]).toMatchObject({ kind: 'sleep-without-mutex', cpu: -1 });
    expect(locks[0]!.message).toContain('runs pcpu_depopulate_chunk without pcpu_alloc_mutex');
  });
});

/** small arguments, so that every example runs in seconds */
const SMALL: Record<string, Record<string, number>> = {
  churn: { ops: 60 },
  counter: { adds: 2000 },
  demo: { adds: 2000, ops: 40 },
  modules: { loads: 10 },
  stress: { ops: 60 },
};

describe('examples under M:N (two CPUs per worker thread)', () => {
  it('covers every example', () => {
    expect(exampleNames()).toEqual([
      'churn',
      'counter',
      'demo',
      'isolation-bug',
      'km',
      'lifecycle',
      'lock-mutant',
      'modules',
      'numa',
      'stress',
      'u64-stats',
    ]);
  });

  it.each(exampleNames())('%s ends as it does 1:1', async (name) => {
    const t = Date.now();
    const r = await runWorkload({
      workload: name,
      seed: 6,
      args: { ...SMALL[name] },
      cpusPerThread: 2,
      phaseTimeoutMs: 15_000,
    });
    expect(r.threads).toEqual({ count: Math.ceil(r.config.cpus / 2), cpusPerThread: 2 });
    // CPUs 0 and 1 share a thread
    expect(r.cpus[0]!.threadId).toBe(r.cpus[1]!.threadId);
    if (name === 'isolation-bug') {
      expect(r.verdict).toBe('fail');
      expect(r.violations.map((v) => [v.checker, v.kind, v.cpu])).toEqual([
        ['isolation', 'foreign-unit', 1],
        ['isolation', 'use-after-free', 1],
        ['isolation', 'out-of-bounds', 1],
      ]);
    } else if (name === 'lock-mutant') {
      expect(r.verdict).toBe('fail');
      const locks = r.violations.filter((v) => v.checker === 'locks');
      expect(locks[0]).toMatchObject({ kind: 'sleep-without-mutex', cpu: -1 });
    } else {
      expect(r.violations).toEqual([]);
      expect(r.verdict).toBe('pass');
      expect(r.shutdown?.pagesRestored).toBe(true);
    }
    expect(Date.now() - t).toBeLessThan(30_000);
  });

  it("a thread's CPUs interleave at every await", async () => {
    const r = await runWorkload({
      workload: fileURLToPath(new URL('../fixtures/interleave.ts', import.meta.url)),
      seed: 1,
      cpus: 2,
      cpusPerThread: 2,
      phaseTimeoutMs: 10_000,
    });
    expect(r.verdict).toBe('pass');
    expect(r.cpus[0]!.threadId).toBe(r.cpus[1]!.threadId);
    // whichever ends last saw both start before either ended
    const last = r.cpus.map((c) => c.result as string[]).sort((a, b) => b.length - a.length)[0];
    expect(last!.slice(0, 2).sort()).toEqual(['start 0', 'start 1']);
  });
});
