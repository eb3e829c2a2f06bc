/**
 * The scheduling policies against the bugs: every policy against every named mutant and a few
 * bugs brought in through the kernel's bug hooks, each in several trials. A trial runs seeds
 * one after another from its own start until the first report (or a cap); the figures are the
 * seeds and seconds that took, as a median with the smallest and largest trial. Then each
 * policy runs the clean allocator for a fixed time and the coverage it reached is counted.
 *
 *   npm run bench -- policies            about three minutes: short runs, few trials
 *   npm run bench -- policies-long       default-length runs, more trials (an hour or more)
 *
 * Seconds are wall time on whatever else the machine is doing; seeds are exact.
 */
import type { KernelFault } from '../src/kernel/mutants.ts';
import { MUTANT_NAMES } from '../src/kernel/mutants.ts';
import { DEFAULT_STRESS, type StressConfig, runStress } from '../src/stress/engine.ts';
import {
  type CoverageTable,
  addCoverage,
  coveragePairs,
  emptyCoverage,
  neverOverlapped,
  orderPairs,
} from '../src/check/coverage.ts';

type Policy = 'random' | 'pct' | 'pos';
const POLICIES: readonly Policy[] = ['random', 'pct', 'pos'];

interface Target {
  name: string;
  mutant?: (typeof MUTANT_NAMES)[number];
  bugs?: readonly KernelFault[];
}

/** Bugs no kernel shipped, through the same hooks the tests use: lock windows opened where 2.6.36 keeps them shut. */
export const INJECTED: readonly Target[] = [
  { name: 'free_percpu gap in pcpu_lock', bugs: [{ path: 'free_percpu', how: 'gap', lock: 'pcpu_lock' }] },
  { name: 'reclaim gap in pcpu_alloc_mutex', bugs: [{ path: 'pcpu_reclaim', how: 'gap', lock: 'pcpu_alloc_mutex' }] },
  { name: 'init_late without pcpu_lock', bugs: [{ path: 'percpu_init_late', how: 'omit', lock: 'pcpu_lock' }] },
  { name: 'populate-zeroes-short', bugs: ['populate-zeroes-short'] },
  { name: 'extend gap in pcpu_lock', bugs: [{ path: 'pcpu_extend_area_map', how: 'gap', lock: 'pcpu_lock' }] },
  { name: 'pcpu_alloc lock order inverted', bugs: [{ path: 'pcpu_alloc', how: 'invert' }] },
];

export interface BenchOptions {
  long: boolean;
}

interface TrialResult {
  seeds: number;
  secs: number;
  found: boolean;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function trial(cfg: StressConfig, target: Target, start: number, cap: number): Promise<TrialResult> {
  const t0 = performance.now();
  for (let i = 0; i < cap; i++) {
    const r = await runStress(
      { ...cfg, seed: start + i, mutant: target.mutant ?? null },
      target.bugs ? { bugs: target.bugs } : {},
    );
    if (r.verdict === 'violation') return { seeds: i + 1, secs: (performance.now() - t0) / 1000, found: true };
  }
  return { seeds: cap, secs: (performance.now() - t0) / 1000, found: false };
}

/** The stress configuration the benchmark runs, short or as a user's default run. */
export function benchConfig(long: boolean, policy: Policy): StressConfig {
  return long
    ? { ...DEFAULT_STRESS, policy }
    : { ...DEFAULT_STRESS, policy, args: { ...DEFAULT_STRESS.args, ops: 300 } };
}

export async function benchPolicies(opts: BenchOptions): Promise<void> {
  const trials = opts.long ? 15 : 5;
  const cap = opts.long ? 40 : 12;
  const ops = benchConfig(opts.long, 'random').args.ops;
  console.log(
    `policies: seeds and seconds to the first report, ${trials} trials each (trial k starts at seed 1000k+1, at most ${cap} seeds), --ops ${ops}`,
  );
  console.log(`  ${'bug'.padEnd(34)} ${'policy'.padEnd(7)} found  seeds: median [min-max]   seconds: median [min-max]`);
  const targets: Target[] = [...MUTANT_NAMES.map((m) => ({ name: m, mutant: m })), ...INJECTED];
  for (const target of targets)
    for (const policy of POLICIES) {
      const cfg = benchConfig(opts.long, policy);
      const rs: TrialResult[] = [];
      for (let k = 0; k < trials; k++) rs.push(await trial(cfg, target, 1000 * k + 1, cap));
      const hit = rs.filter((r) => r.found);
      // a trial that never found the bug counts at its cap: the median stays honest about misses
      const seeds = rs.map((r) => r.seeds);
      const secs = rs.map((r) => r.secs);
      const span = (xs: number[], d: number): string =>
        `${median(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}]`;
      console.log(
        `  ${target.name.padEnd(34)} ${policy.padEnd(7)} ${`${hit.length}/${rs.length}`.padEnd(6)} ${span(seeds, 0).padEnd(24)} ${span(secs, 1)}`,
      );
    }
}

/** Each policy on the clean allocator for the same wall time, from seed 1 on: what its seeds reached together. */
export async function benchCoverage(opts: BenchOptions): Promise<void> {
  const secs = opts.long ? 120 : 15;
  console.log(
    `coverage in ${secs} s of seeds from 1 (clean allocator, --ops ${benchConfig(opts.long, 'random').args.ops})`,
  );
  console.log(
    `  ${'policy'.padEnd(7)} seeds  pairs overlapped  access pairs: both orders / one order  sleeps under concurrency`,
  );
  for (const policy of POLICIES) {
    const cfg = benchConfig(opts.long, policy);
    const t0 = performance.now();
    let c: CoverageTable = emptyCoverage();
    let seed = 1;
    while (performance.now() - t0 < secs * 1000)
      c = addCoverage(c, (await runStress({ ...cfg, seed: seed++ })).coverage!);
    const { both, one } = orderPairs(c);
    const all = coveragePairs().length;
    const sleeps = Object.values(c.sleeps).reduce((a, s) => [a[0] + s[0], a[1] + s[1]], [0, 0]);
    console.log(
      `  ${policy.padEnd(7)} ${String(seed - 1).padEnd(6)} ${`${all - neverOverlapped(c).length}/${all}`.padEnd(17)} ${`${both.length} / ${one.length}`.padEnd(38)} ${sleeps[1]}/${sleeps[0]}`,
    );
  }
}
