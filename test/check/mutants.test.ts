/**
 * Every historical bug, switched back on, is caught by a stress run with a fixed seed, and
 * the same seed without the bug is clean. The runs are deterministic: each is a function of
 * its seed.
 */
import { describe, expect, it } from 'vitest';
import { MUTANT_NAMES, type MutantName } from '../../src/kernel/mutants.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';
import { explore } from '../../src/explore/dpor.ts';

// the checker each mutant's catalogue entry names, without the reference model that would
// see most of them first (test/check/reference.test.ts)
const cfg = (seed: number, mutant: MutantName | null) => ({
  ...DEFAULT_STRESS,
  seed,
  mutant,
  reference: false,
  args: { ...DEFAULT_STRESS.args, ops: 600 },
});

const cases: [MutantName, number, string, string][] = [
  ['reclaim-drops-mutex', 1, 'races', 'lockset'],
  ['extend-stale-walk', 2, 'kernel-bug', 'LIST_CORRUPTION'],
  ['destroy-in-use', 1, 'locks', 'sleep-without-mutex'],
  ['populate-no-zero', 1, 'isolation', 'nonzero-new-area'],
  ['populate-fail-keeps-area', 2, 'areas', 'leak'],
  ['free-without-lock', 1, 'locks', 'not-held'],
];

describe('mutants', () => {
  it('covers every mutant', () => {
    expect(cases.map((c) => c[0]).sort()).toEqual([...MUTANT_NAMES].sort());
  });

  it.each(cases)(
    '%s is caught with seed %i, and that seed is clean without it',
    async (mutant, seed, checker, kind) => {
      const bad = await runStress(cfg(seed, mutant));
      expect(bad.verdict).toBe('violation');
      expect(bad.violations[0]).toMatchObject({ checker, kind });
      expect(bad.history.length).toBeGreaterThan(0);
      const again = await runStress(cfg(seed, mutant));
      expect(again.violations[0]).toEqual(bad.violations[0]);
      const good = await runStress(cfg(seed, null));
      expect(good.violations).toEqual([]);
    },
  );

  // partial-order sampling finds every one too, with every checker on (the reference model included)
  const posCases: [MutantName, number, string, string][] = [
    ['reclaim-drops-mutex', 1, 'races', 'lockset'],
    ['extend-stale-walk', 3, 'kernel-bug', 'LIST_CORRUPTION'],
    ['destroy-in-use', 1, 'locks', 'sleep-without-mutex'],
    ['populate-no-zero', 1, 'isolation', 'nonzero-new-area'],
    ['populate-fail-keeps-area', 4, 'reference', 'placement'],
    ['free-without-lock', 1, 'locks', 'not-held'],
  ];
  it('--policy pos covers every mutant', () => {
    expect(posCases.map((c) => c[0]).sort()).toEqual([...MUTANT_NAMES].sort());
  });
  it.each(posCases)('--policy pos catches %s with seed %i, the same way twice', async (mutant, seed, checker, kind) => {
    const pos = { ...DEFAULT_STRESS, seed, mutant, policy: 'pos' as const, args: { ...DEFAULT_STRESS.args, ops: 300 } };
    const bad = await runStress(pos);
    expect(bad.violations[0]).toMatchObject({ checker, kind });
    expect(bad.rerun).toContain(' --policy pos ');
    const again = await runStress(pos);
    expect([again.ticks, again.violations[0]]).toEqual([bad.ticks, bad.violations[0]]);
  });

  it('a long run without mutants is clean on both backends', async () => {
    for (const backend of ['vm', 'km'] as const) {
      const r = await runStress({
        ...DEFAULT_STRESS,
        seed: 99,
        backend,
        cpus: 4,
        args: { ...DEFAULT_STRESS.args, ops: 3000 },
      });
      expect(r.violations).toEqual([]);
    }
  });

  it('exploration of the stress program counts schedules and finds a missing lock', async () => {
    const small = {
      ...cfg(3, null),
      cpus: 2,
      granularity: 'sleep' as const,
      args: { ...DEFAULT_STRESS.args, ops: 4, maxLive: 3, earlyOps: 0 },
    };
    const clean = await explore(small, { preemptions: 2, maxSchedules: 10_000, maxSeconds: 60, reduction: true });
    expect(clean.violations).toEqual([]);
    expect(clean.complete).toBe(true);
    expect(clean.schedules).toBeGreaterThan(1);
    // bound 0 still switches freely where the running task cannot go on (CHESS's rule)
    const zero = await explore(small, { preemptions: 0, maxSchedules: 10_000, maxSeconds: 60, reduction: true });
    expect(zero.complete).toBe(true);
    expect(zero.schedules).toBeLessThanOrEqual(clean.schedules);
    const bad = await explore(
      { ...small, mutant: 'free-without-lock' },
      { preemptions: 2, maxSchedules: 10_000, maxSeconds: 60, reduction: true },
    );
    expect(bad.violations.map((v) => `${v.checker}/${v.kind}`)).toContain('locks/not-held');
  });
});
