/**
 * A stress campaign: many seeds of one configuration, each a pure function of its number.
 * Seeds run one after another in this thread, or in parallel on a piscina pool (--jobs), and
 * a campaign can be cut into disjoint shards (--shard K/N) whose reports `percpu-sim merge`
 * joins, so that a campaign spreads over the cores of a machine and over many machines.
 *
 * Which seeds run on real worker threads (one in WORKER_ROUND, through the allocator actor and
 * the CPU worker entry) depends on the seed's place in the whole campaign, never on the shard,
 * so that the union of the shards is the campaign itself.
 */
import { stressCommand } from '../files/rerun.ts';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { BackendKind } from '../kernel/setup.ts';
import type { RunObserver } from '../harness/observer.ts';
import { type RunOptions, type RunReport, runWorkload } from '../smp/run.ts';
import { workerEntry } from '../smp/worker-url.ts';
import { bundleWithSourceUrls } from '../smp/bundle.ts';
import { type EngineHooks, type StressReport, runStress } from './engine.ts';
import { type StressConfig, resolveMachine } from '../files/config.ts';
import type { SeedResult, Shard } from '../files/saved.ts';
import { type CoverageTable, addCoverage, emptyCoverage } from '../check/coverage.ts';

/**
 * Iterations of the torn-access probe that a run on free threads starts with (program.ts): on
 * two busy cores, enough that a 64-bit store done as two 32-bit ones is read torn.
 */
export const TORN_PROBE = 2000;

/** The stress program of a configuration (its machine resolved) on real worker threads. */
export function stressOnWorkers(
  cfg: StressConfig,
  extra: Partial<RunOptions>,
  tornProbe = TORN_PROBE,
): Promise<RunReport> {
  // one thread at a time tears nothing: the probe runs on free threads only
  const probe: Record<string, number> = extra.control || !tornProbe ? {} : { tornProbe, word: cfg.word };
  return runWorkload({
    workload: 'stress',
    seed: cfg.seed,
    cpus: cfg.cpus,
    nodes: cfg.nodes,
    ...(cfg.cpuToNode ? { cpuToNode: cfg.cpuToNode } : {}),
    ...(cfg.distance ? { distance: cfg.distance } : {}),
    backend: cfg.backend as BackendKind,
    memoryMiB: cfg.memoryMiB,
    args: { ...cfg.args, ...probe },
    countViolations: cfg.count,
    strictLocks: cfg.strict,
    failRate: cfg.failRate,
    ...(cfg.mutant ? { mutant: cfg.mutant } : {}),
    ...extra,
  });
}

/** Which seeds of a campaign run on worker threads (one in this many). */
export const WORKER_ROUND = 5;

/**
 * Of those, which run under the controller: two in every four (so one seed in ten), the first
 * and the fourth, whose seeds differ in parity, as do the second and third, which run free. A
 * seed's parity picks its backend (resolveMachine), so controlled and free rounds each run on
 * both backends; the first round is controlled and, from the default base, on the vm backend,
 * where the page-table and TLB protocol lives, and the second runs free.
 */
export function controlledSeed(base: number, seed: number): boolean {
  const i = ((seed - base) >>> 0) % (4 * WORKER_ROUND);
  return i === WORKER_ROUND - 2 || i === 4 * WORKER_ROUND - 2;
}

/** The options of a controlled worker run of a configuration: its policy picks the threads too. */
export function controlledRound(cfg: StressConfig): Partial<RunOptions> {
  return { control: { policy: cfg.policy === 'pct' ? 'pct' : 'random', word: cfg.word } };
}

/** The configuration a worker round runs: its machine resolved, and short. */
export function workerRoundConfig(config: StressConfig): StressConfig {
  return { ...config, ...resolveMachine(config), args: { ...config.args, ops: Math.min(config.args.ops, 400) } };
}

/**
 * A short run of the stress program on real worker threads, as a stress report: its failures
 * become violations, with a rerun command that adds --workers.
 */
export async function workerRound(
  config: StressConfig,
  onProgress: (d: number, t: number) => void,
  recorder: RunObserver | null = null,
  controlled = false,
): Promise<StressReport> {
  const t0 = performance.now();
  const cfg = workerRoundConfig(config);
  const r = await stressOnWorkers(cfg, {
    phaseTimeoutMs: 30_000,
    failOnLeak: true,
    onProgress: (_phase, d, t) => onProgress(d, t),
    ...(recorder ? { recorder } : {}),
    ...(controlled ? controlledRound(cfg) : {}),
  });
  const where = controlled
    ? 'on worker threads under the controller; rerun with --workers --controlled'
    : 'on worker threads; rerun with --workers';
  const violations = r.violations.slice(0, 50).map((v) => ({ ...v, message: `${v.message} (${where})` }));
  return {
    seed: cfg.seed,
    config: cfg,
    verdict: r.verdict === 'pass' ? 'clean' : 'violation',
    violations,
    workers: true,
    rerun: stressCommand(cfg, { workers: true, controlled }),
    history: [],
    ticks: 0,
    requests: r.events,
    knownLockIssues: 0,
    cpus: [],
    ms: performance.now() - t0,
    log: [],
  };
}

/** The seeds of a campaign of `runs` seeds from `base`, or of one shard of it (every N-th). */
export function campaignSeeds(base: number, runs: number, shard: Shard | null): number[] {
  const seeds: number[] = [];
  for (let i = 0; i < runs; i++) if (!shard || i % shard.count === shard.index - 1) seeds.push((base + i) >>> 0);
  return seeds;
}

/**
 * Whether the seed at this place of the campaign runs on worker threads: the fourth of every
 * five, so that the first is a seed of the same parity as the base (a vm seed from the default
 * base), and the first controlled round, early in a campaign, walks page tables.
 */
export function onWorkers(base: number, seed: number): boolean {
  return ((seed - base) >>> 0) % WORKER_ROUND === WORKER_ROUND - 2;
}

/** Runs one seed of a campaign in this thread: the deterministic engine, or a worker round. */
export async function runSeed(
  cfg: StressConfig,
  seed: number,
  hooks: EngineHooks = {},
  recorder: RunObserver | null = null,
): Promise<StressReport> {
  if (onWorkers(cfg.seed, seed))
    return workerRound({ ...cfg, seed }, (d, t) => hooks.onProgress?.(d, t), recorder, controlledSeed(cfg.seed, seed));
  return runStress({ ...cfg, seed }, hooks);
}

export function seedResult(r: StressReport, workers: boolean, controlled = false): SeedResult {
  return {
    seed: r.seed,
    verdict: r.verdict,
    workers,
    ...(controlled ? { controlled } : {}),
    first: r.violations.slice(0, 3).map((v) => `${v.checker}/${v.kind}: ${v.message}`),
    requests: r.requests,
    ms: Math.round(r.ms),
  };
}

export interface CampaignOptions {
  seeds: readonly number[];
  /** seeds run at once; 1 runs them in this thread */
  jobs: number;
  /** run every seed, not stopping at the first violation */
  keepGoing: boolean;
  /** stop starting seeds after this many ms */
  durationMs?: number;
  /** stops the campaign at once: no seed starts, the seeds running are abandoned, what finished is returned */
  signal?: AbortSignal;
  /** as each seed starts */
  onStart?: (seed: number) => void;
  /** after each seed: its report (without the log), how many are done */
  onSeed?: (r: StressReport, done: number) => void;
  /** within a seed, when it runs in this thread */
  onProgress?: (done: number, total: number) => void;
}

export interface CampaignResult {
  results: SeedResult[];
  /** the report of the first violating seed (lowest), else of the last seed run; null when none finished */
  report: StressReport | null;
  /** seeds that were not run (or did not finish): a violation stopped the campaign, time ran out, or a signal */
  skipped: number;
  /** those seeds */
  notRun: number[];
  /** the coverage of every seed run in this thread's engine, summed (worker rounds have none) */
  coverage: CoverageTable;
}

/**
 * Runs a campaign's seeds, in this thread or on a pool of `jobs` threads. On the pool, the
 * seeds that run on worker threads (see onWorkers) run from this thread, one at a time: they
 * are threads already, and a pool thread that ran one would start a bundler of its own.
 */
export async function runCampaign(cfg: StressConfig, o: CampaignOptions): Promise<CampaignResult> {
  const t0 = Date.now();
  const reports: StressReport[] = [];
  let next = 0;
  const more = (): boolean =>
    next < o.seeds.length &&
    !o.signal?.aborted &&
    (o.keepGoing || !reports.some((r) => r.verdict === 'violation')) &&
    !(o.durationMs !== undefined && Date.now() - t0 >= o.durationMs);
  const done = (r: StressReport): void => {
    reports.push({ ...r, log: [] });
    o.onSeed?.(r, reports.length);
  };
  const stopped = new Promise<null>((resolve) => {
    if (o.signal?.aborted) resolve(null);
    o.signal?.addEventListener('abort', () => resolve(null), { once: true });
  });
  /** The seed's report, or null once the signal has stopped the campaign (the run is abandoned). */
  const unlessStopped = (run: Promise<StressReport>): Promise<StressReport | null> => {
    run.catch(() => {});
    return Promise.race([run, stopped]);
  };
  const hooks = {
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  if (o.jobs <= 1) {
    while (more()) {
      const seed = o.seeds[next++]!;
      o.onStart?.(seed);
      const r = await unlessStopped(runSeed(cfg, seed, hooks));
      if (r) done(r);
    }
  } else {
    // from the sources, the job thread runs a bundle too, with each module's own URL pinned
    const e = import.meta.url.endsWith('.ts')
      ? { url: await bundleWithSourceUrls(new URL('../../workers/stress-job.ts', import.meta.url).href), argv: [] }
      : workerEntry('workers/stress-job');
    const pool = new Piscina({
      filename: e.url.href,
      argv: e.argv,
      minThreads: o.jobs,
      maxThreads: o.jobs,
      idleTimeout: 1000,
    });
    let rounds: Promise<unknown> = Promise.resolve();
    /** A worker-thread seed, from this thread, after the one before it. */
    const round = (seed: number): Promise<StressReport> => {
      const run = rounds.then(() => runSeed(cfg, seed, hooks));
      rounds = run.catch(() => {});
      return run;
    };
    try {
      const lane = async (): Promise<void> => {
        while (more()) {
          const seed = o.seeds[next++]!;
          o.onStart?.(seed);
          let r: StressReport | null;
          try {
            r = await unlessStopped(
              onWorkers(cfg.seed, seed)
                ? round(seed)
                : (pool.run({ cfg, seed } satisfies StressJob) as Promise<StressReport>),
            );
          } catch (e) {
            // the simulator's own thread failed, not the kernel: say which seed, and stop
            throw new Error(
              `seed ${seed}: the campaign's job thread failed (${(e as Error).message}); rerun that seed alone with --seed ${seed} --jobs 1`,
            );
          }
          if (r) done(r);
        }
      };
      await Promise.all(Array.from({ length: o.jobs }, lane));
    } finally {
      // ends the threads of abandoned seeds too
      await pool.destroy();
    }
  }
  reports.sort((a, b) => a.seed - b.seed);
  const report = reports.find((r) => r.verdict === 'violation') ?? reports.at(-1) ?? null;
  const ran = new Set(reports.map((r) => r.seed));
  return {
    results: reports.map((r) => seedResult(r, onWorkers(cfg.seed, r.seed), controlledSeed(cfg.seed, r.seed))),
    report,
    skipped: o.seeds.length - reports.length,
    notRun: o.seeds.filter((s) => !ran.has(s)),
    coverage: reports.reduce((c, r) => (r.coverage ? addCoverage(c, r.coverage) : c), emptyCoverage()),
  };
}

/** What the pool's job worker gets: the campaign's configuration and one seed of it. */
export interface StressJob {
  cfg: StressConfig;
  seed: number;
}

/** The default --jobs: one per core. */
export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}
