/**
 * Exploration with dynamic partial-order reduction: on the same scenarios and bound it runs a
 * tenth of the schedules of the plain walk or fewer, finds every violation the plain walk
 * finds, and finds each lock-related bug class in some named scenario with the kernel's own
 * asserts off. Every named scenario is explored completely within its bound.
 */
import { describe, expect, it } from 'vitest';
import { explore, runSchedule } from '../../src/explore/dpor.ts';
import { SCENARIOS, scenario } from '../../src/explore/scenarios.ts';
import type { LockBug, MutantName } from '../../src/kernel/mutants.ts';
import { DEFAULT_STRESS, type StressConfig } from '../../src/stress/engine.ts';

const base: StressConfig = {
  ...DEFAULT_STRESS,
  backend: 'vm',
  nodes: 1,
  memoryMiB: 16,
  granularity: 'access',
  lockdep: false,
};

async function both(name: string, mutant: MutantName | null, preemptions = 3) {
  const sc = scenario(name)!;
  const cfg = { ...base, ...sc.config, mutant };
  const opts = { preemptions, maxSchedules: 5000, maxSeconds: 120, programs: sc.programs };
  const dpor = await explore(cfg, { ...opts, reduction: true });
  const plain = await explore(cfg, { ...opts, reduction: false });
  const kinds = (r: typeof dpor) => r.violations.map((v) => `${v.checker}/${v.kind}`).sort();
  return { dpor, plain, kinds };
}

describe('DPOR against the plain walk', () => {
  it.each([
    ['last-area', null],
    ['modules', null],
    ['extend-vs-free', null],
    ['extend-vs-free', 'extend-stale-walk'],
    ['modules', 'free-without-lock'],
  ] as const)('%s (mutant %s): at most a tenth of the schedules, the same violations', async (name, mutant) => {
    const { dpor, plain, kinds } = await both(name, mutant);
    expect(plain.complete).toBe(true);
    expect(dpor.complete).toBe(true);
    expect(dpor.schedules * 10).toBeLessThanOrEqual(plain.schedules);
    expect(kinds(dpor)).toEqual(kinds(plain));
    if (mutant) expect(kinds(dpor).length).toBeGreaterThan(0);
  });
});

describe('named scenarios', () => {
  it.each(SCENARIOS.map((s) => s.name))(
    '%s is explored completely within its bound and is clean',
    async (name) => {
      const sc = scenario(name)!;
      const r = await explore(
        { ...base, ...sc.config },
        { preemptions: sc.preemptions, maxSchedules: 5000, maxSeconds: 60, reduction: true, programs: sc.programs },
      );
      expect(r.complete).toBe(true);
      expect(r.violations).toEqual([]);
      expect(r.schedules).toBeGreaterThan(1);
      // early-limit takes about 15 s on two quiet cores; the exploration's own bound is 60 s
    },
    90_000,
  );

  const classes: [string, string, LockBug, string][] = [
    [
      'a missing pcpu_lock in free_percpu',
      'modules',
      { path: 'free_percpu', how: 'omit', lock: 'pcpu_lock' },
      'races/lockset',
    ],
    [
      'a missing pcpu_lock in the allocation path',
      'last-area',
      { path: 'pcpu_alloc', how: 'omit', lock: 'pcpu_lock' },
      'races/lockset',
    ],
    [
      'a lock gap without sleep in free_percpu',
      'extend-vs-free',
      { path: 'free_percpu', how: 'gap', lock: 'pcpu_lock' },
      'races/lockset',
    ],
    [
      'an inverted lock order in reclaim',
      'reclaim-vs-populate',
      { path: 'pcpu_reclaim', how: 'invert' },
      'locks/lock-order',
    ],
    [
      'reclaim without the mutex',
      'reclaim-vs-populate',
      { path: 'pcpu_reclaim', how: 'omit', lock: 'pcpu_alloc_mutex' },
      'races/lockset',
    ],
  ];
  it.each(classes)('%s is found by exploring %s', async (_what, name, bug, kind) => {
    const sc = scenario(name)!;
    const r = await explore(
      { ...base, ...sc.config },
      {
        preemptions: sc.preemptions,
        maxSchedules: 5000,
        maxSeconds: 60,
        reduction: true,
        programs: sc.programs,
        bugs: [bug],
      },
    );
    expect(r.violations.map((v) => `${v.checker}/${v.kind}`)).toContain(kind);
    // the schedule it prints reproduces it
    const v = r.violations.find((x) => `${x.checker}/${x.kind}` === kind)!;
    const again = await runSchedule({ ...base, ...sc.config }, v.schedule, { programs: sc.programs, bugs: [bug] });
    expect(again.report.violations.map((x) => `${x.checker}/${x.kind}`)).toContain(kind);
  });
});
