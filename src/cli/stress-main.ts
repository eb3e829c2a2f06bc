/**
 * The `stress`, `mutants` and `replay-run` commands. Kept apart from cli.ts because the
 * stress command has many knobs; the parsing helpers come from there.
 */
import { violationLine } from '../check/violation.ts';
import { readFileSync } from 'node:fs';
import { MUTANTS, MUTANT_NAMES } from '../kernel/mutants.ts';
import { replayRunLog, saveRunLog } from '../smp/run-log.ts';
import {
  CampaignSchema,
  SavedRunLogSchema,
  SavedStressSchema,
  type SeedResult,
  type Shard,
  schemaErrors,
  writeSavedStress,
} from '../files/saved.ts';
import { campaignSeeds, defaultJobs, runCampaign, runSeed, stressOnWorkers } from '../stress/campaign.ts';
import { DEFAULT_STRESS, type StressConfig, type StressReport, resolveMachine, runStress } from '../stress/engine.ts';
import { replayRunCommand, stressCommand } from '../files/rerun.ts';
import { exploreMain, scenariosHelp, scheduleMain } from './explore.ts';
import { runSchedule } from '../explore/dpor.ts';
import { scenario } from '../explore/scenarios.ts';
import { CHECK_OPTIONS, MACHINE_OPTIONS, parseMutant } from './options.ts';
import { Outputs } from './outputs.ts';
import { onInterrupt } from './common.ts';
import type { SizeMix } from '../stress/program.ts';
import { GRANULARITIES } from '../sim/scheduler.ts';
import { HTML_OPTION, TRACE_OPTION, Visuals } from './visuals.ts';
import type { TimelineRecorder } from '../report/timeline.ts';
import type { EngineHooks } from '../stress/engine.ts';
import { runPage } from './run.ts';

export interface Flags {
  int(flag: string, v: unknown, min: number, max: number, dflt: number): number;
  oneOf<T extends string>(flag: string, v: unknown, allowed: readonly T[], dflt: T): T;
  num(flag: string, v: unknown, min: number, max: number, dflt: number): number;
  fail(msg: string): never;
  progress(quiet: boolean): (phase: string, done: number, total: number) => void;
}

export const STRESS_OPTIONS = {
  ...MACHINE_OPTIONS,
  'max-delay': { type: 'string' },
  granularity: { type: 'string' },
  'no-races': { type: 'boolean' },
  'no-lockdep': { type: 'boolean' },
  'fail-rate': { type: 'string' },
  ops: { type: 'string' },
  'alloc-pct': { type: 'string' },
  'reserved-pct': { type: 'string' },
  sizes: { type: 'string' },
  'max-align-shift': { type: 'string' },
  'max-live': { type: 'string' },
  'early-ops': { type: 'string' },
  ...CHECK_OPTIONS,
  duration: { type: 'string' },
  runs: { type: 'string' },
  workers: { type: 'boolean' },
  explore: { type: 'boolean' },
  preemptions: { type: 'string' },
  'max-schedules': { type: 'string' },
  'max-seconds': { type: 'string' },
  scenario: { type: 'string' },
  'no-reduction': { type: 'boolean' },
  schedule: { type: 'string' },
  jobs: { type: 'string' },
  shard: { type: 'string' },
  'keep-going': { type: 'boolean' },
  ...TRACE_OPTION,
  ...HTML_OPTION,
} as const;

export const STRESS_HELP = `Usage: percpu-sim stress [options]

Seeded stress of the whole machine with every checker on: allocator invariants after every
step, the 2.6.36 lock rules, per-CPU isolation on every write and every new area, kernel
BUGs, data corruption and page accounting. Each simulated CPU allocates, stamps, checks and
frees at random; the scheduler interleaves them at every lock drop and sleeping point. A run
is a pure function of its seed, so a failure prints the command that replays it exactly.

Machine and scheduler:
  --cpus N              simulated CPUs (default ${DEFAULT_STRESS.cpus})
  --nodes N             NUMA nodes (default: 1 to 4, cycling with the seed)
  --backend vm|km|auto  chunk backend (default auto: vm on even seeds, km on odd ones)
  --memory MIB          physical memory (default ${DEFAULT_STRESS.memoryMiB})
  --seed N              the run's seed (default 1)
  --policy random|pct   random delays, or PCT-style priorities with rare preemptions
  --granularity G       where a task may be preempted: sleep (where the kernel sleeps),
                        lock (also before every acquire and after every release), or
                        access (also wherever a path touches a shared object; default)
  --max-delay N         the longest a sleeping step lasts, in ticks (default ${DEFAULT_STRESS.maxDelay})
  --fail-rate F         fraction of page allocations that fail (default ${DEFAULT_STRESS.failRate})
Operation mix (per CPU):
  --ops N               operations per CPU (default ${DEFAULT_STRESS.args.ops})
  --alloc-pct P         percent of operations that allocate (default ${DEFAULT_STRESS.args.allocPct})
  --reserved-pct P      percent of allocations from the reserved chunk (default ${DEFAULT_STRESS.args.reservedPct})
  --sizes small|mixed|large   size distribution (default ${DEFAULT_STRESS.args.sizes})
  --max-align-shift N   alignments up to 2^N (default ${DEFAULT_STRESS.args.maxAlignShift})
  --max-live N          live areas per CPU at most (default ${DEFAULT_STRESS.args.maxLive})
  --early-ops N         allocations the boot CPU makes before slab is online, past the
                        early map's limit (default ${DEFAULT_STRESS.args.earlyOps}; 0 for none)
Length:
  --duration S          keep running with the next seeds until a violation or S seconds
  --runs N              or run N seeds (default: one run, or as many as --duration allows)
  --jobs N              seeds at once, each on a thread of its own (default: one per core,
                        here ${defaultJobs()}); every seed is still a pure function of its number
  --keep-going          run every seed, not stopping at the first violation
  --shard K/N           run only the K-th of N disjoint slices of the --runs seeds (every N-th
                        seed), to the end; percpu-sim merge joins the shards' --json reports
Checking:
  --mutant NAME         bring back a historical bug (see percpu-sim mutants)
  --strict              report schedule_work() under pcpu_lock as a violation, not as the
                        known 2.6.36 dependency
  --no-races            switch off the data-race detector (lockset and happens-before)
  --no-lockdep          ignore the kernel's own lockdep_assert_held() calls (the race
                        detector finds a missing lock without them)
  --count               count violations and go on, instead of stopping at the first
Exploration:
  --explore             visit every interleaving of a small scenario within a preemption
                        bound, one per class of equivalent orders (dynamic partial-order
                        reduction with sleep sets); each violation comes with its schedule
  --scenario NAME       what to explore (below); without it, the stress program itself
                        (keep it small: --cpus 2 --ops 4)
  --preemptions K       the bound: switches away from a task that could go on (default:
                        the scenario's, 3; or 2)
  --no-reduction        the plain depth-first walk over every order, for comparison
  --max-schedules N     stop after N schedules (default 100000)
  --max-seconds S       stop after S seconds (default 600)
  --schedule LIST       rerun one schedule an exploration printed: task names, comma
                        separated (0.3 is CPU 0's fourth request, k.0 the reclaim worker)
Other:
  --workers             run the same program on real worker threads instead (true
                        parallelism; a failure there replays through its saved event log)
  --save FILE           save the run for percpu-sim replay-run
  --trace FILE          the last run as a Chrome trace, for https://ui.perfetto.dev or
                        chrome://tracing (an exploration: trace one --schedule)
  --html FILE           the last run as a self-contained HTML report
  --json                print the report as JSON
  -h, --help            this text

Scenarios (--explore --scenario NAME):
${scenariosHelp()}

Exit status: 0 when clean, 1 when a violation was found, 2 for bad usage.

Examples:
  percpu-sim stress --seed 7 --duration 30
  percpu-sim stress --mutant reclaim-drops-mutex --duration 60
  percpu-sim stress --explore --scenario extend-vs-free --mutant extend-stale-walk
  percpu-sim stress --explore --cpus 2 --ops 4 --preemptions 2`;

export function stressConfig(values: Record<string, unknown>, f: Flags): StressConfig {
  const mutant = parseMutant(values.mutant, f.fail);
  const d = DEFAULT_STRESS;
  const cpus = f.int('--cpus', values.cpus, 1, 64, d.cpus);
  const nodes = f.int('--nodes', values.nodes, 1, 16, d.nodes);
  if (nodes > cpus) f.fail(`--nodes ${nodes} is more than --cpus ${cpus}: every node needs a CPU`);
  if (values.workers && (values.duration !== undefined || values.runs !== undefined))
    f.fail('--workers runs one seed on real threads; --duration and --runs are for the deterministic engine');
  if (values.workers && (values.explore || values.schedule !== undefined))
    f.fail(
      '--workers runs on real threads, which cannot be explored or steered; --explore and --schedule use the deterministic engine',
    );
  for (const flag of ['jobs', 'shard', 'keep-going'])
    if (values[flag] !== undefined && (values.workers || values.explore || values.schedule !== undefined))
      f.fail(`--${flag} is for a campaign of seeds (--runs or --duration), not for --workers, --explore or --schedule`);
  for (const flag of ['preemptions', 'no-reduction', 'max-schedules', 'max-seconds'])
    if (values[flag] !== undefined && !values.explore) f.fail(`--${flag} is for --explore`);
  if (values.scenario !== undefined && !values.explore && values.schedule === undefined)
    f.fail('--scenario is for --explore or --schedule');
  if (values.explore && (values.trace !== undefined || values.html !== undefined))
    f.fail(
      '--trace and --html draw one run; an exploration runs many: rerun the schedule it prints with --schedule and --trace or --html',
    );
  return {
    seed: f.int('--seed', values.seed, 0, 2 ** 32 - 1, 1),
    cpus,
    nodes,
    backend: f.oneOf('--backend', values.backend, ['vm', 'km', 'auto'] as const, d.backend),
    memoryMiB: f.int('--memory', values.memory, 16, 4096, d.memoryMiB),
    policy: f.oneOf('--policy', values.policy, ['random', 'pct', 'fifo'] as const, 'random'),
    granularity: f.oneOf('--granularity', values.granularity, GRANULARITIES, d.granularity),
    maxDelay: f.int('--max-delay', values['max-delay'], 1, 1000, d.maxDelay),
    failRate: f.num('--fail-rate', values['fail-rate'], 0, 1, d.failRate),
    mutant: mutant ?? null,
    strict: values.strict === true,
    races: values['no-races'] !== true,
    lockdep: values['no-lockdep'] !== true,
    count: values.count === true,
    args: {
      ops: f.int('--ops', values.ops, 1, 10_000_000, d.args.ops),
      allocPct: f.int('--alloc-pct', values['alloc-pct'], 0, 100, d.args.allocPct),
      reservedPct: f.int('--reserved-pct', values['reserved-pct'], 0, 100, d.args.reservedPct),
      sizes: f.oneOf('--sizes', values.sizes, ['small', 'mixed', 'large'] as const, d.args.sizes) as SizeMix,
      maxAlignShift: f.int('--max-align-shift', values['max-align-shift'], 0, 12, d.args.maxAlignShift),
      maxLive: f.int('--max-live', values['max-live'], 1, 100_000, d.args.maxLive),
      earlyOps: f.int('--early-ops', values['early-ops'], 0, 100_000, d.args.earlyOps),
    },
  };
}

/** A stress run's report as text; `replay` is the command that reruns it. */
function formatReport(r: StressReport, runs: number, replay: string): string {
  const out: string[] = [];
  const c = r.config;
  out.push(
    `percpu-sim stress: ${c.cpus} CPUs, ${c.nodes} node(s), ${c.backend}, policy ${c.policy}, seed ${r.seed}${c.mutant ? `, mutant ${c.mutant}` : ''}`,
  );
  out.push(`${runs} run(s); last run: ${r.requests} requests, ${r.ticks} scheduler ticks, ${r.ms.toFixed(0)} ms`);
  if (r.knownLockIssues)
    out.push(
      `known 2.6.36 lock dependency (schedule_work under pcpu_lock): seen ${r.knownLockIssues} time(s); --strict makes it a violation`,
    );
  if (r.verdict === 'clean') {
    out.push('verdict: CLEAN (no violation)');
    return out.join('\n');
  }
  out.push(`verdict: VIOLATION (${r.violations.length}${r.violations.length >= 50 ? '+' : ''})`);
  for (const v of r.violations.slice(0, 10))
    out.push(`  [${v.checker}/${v.kind}] tick ${v.tick}${v.cpu >= 0 ? ` cpu ${v.cpu}` : ''}: ${v.message}`);
  if (r.history.length) {
    out.push('events before the first violation:');
    for (const h of r.history.slice(-20)) out.push(`  ${h}`);
  }
  out.push(`seed: ${r.seed}`);
  out.push(`replay: ${replay}`);
  return out.join('\n');
}

/** Engine hooks that feed a timeline recorder. */
export function recordHooks(recorder: TimelineRecorder): Pick<EngineHooks, 'inject' | 'onEvent'> {
  return { inject: (pc) => recorder.attach(pc), onEvent: (e) => recorder.observe(e) };
}

/** The HTML report's verdict of a stress run; its violations go on the timeline. */
export function stressPage(r: StressReport, replay: string, recorder: TimelineRecorder | null = null) {
  // a round on worker threads put its failures on the timeline itself
  for (const v of r.violations)
    if (v.checker !== 'workers')
      recorder?.violation(v.tick, `[${v.checker}/${v.kind}]${v.cpu >= 0 ? ` cpu ${v.cpu}` : ''}: ${v.message}`);
  const c = r.config;
  return {
    title: `percpu-sim stress: ${c.cpus} CPUs, ${c.nodes} node(s), ${c.backend}, policy ${c.policy}, granularity ${c.granularity}`,
    verdict: {
      label: r.verdict.toUpperCase(),
      ok: r.verdict === 'clean',
      seed: r.seed,
      replay,
      notes: [`${r.requests} requests, ${r.ticks} scheduler ticks`, ...(c.mutant ? [`mutant: ${c.mutant}`] : [])],
    },
  };
}

export async function stressMain(values: Record<string, unknown>, f: Flags): Promise<number> {
  const cfg = stressConfig(values, f);
  const outputs = new Outputs('stress');
  const savePath = outputs.claim('--save', values.save);
  const visuals = new Visuals(outputs, values);
  const json = values.json === true;
  const bar = f.progress(json);
  if (values.workers) {
    Object.assign(cfg, resolveMachine(cfg));
    const recorder = visuals.fresh();
    const r = await stressOnWorkers(cfg, { onProgress: bar, ...(recorder ? { recorder } : {}) });
    visuals.write({
      ...runPage(r),
      title: `percpu-sim stress --workers: ${cfg.cpus} CPUs, ${cfg.nodes} node(s), ${cfg.backend}`,
    });
    const { log: _l, fingerprint: _f, ...data } = r;
    process.stdout.write(
      json
        ? JSON.stringify(data, null, 2) + '\n'
        : `${r.verdict === 'pass' ? 'verdict: CLEAN' : 'verdict: VIOLATION'}\n${r.violations.map((v) => `  ${violationLine(v)}`).join('\n')}\nseed: ${cfg.seed}\nrerun: ${stressCommand(cfg, { workers: true })}${savePath !== undefined ? `\nreplay the allocator's side exactly: ${replayRunCommand(savePath)}` : ''}\n`,
    );
    outputs.write('--save', savePath, (p) => saveRunLog(p, r));
    return outputs.finish(r.verdict === 'pass' ? 0 : 1);
  }
  if (values.explore) return exploreMain(values, cfg, f, bar, json, outputs, savePath);
  if (typeof values.schedule === 'string') {
    const recorder = visuals.fresh();
    const {
      report: r,
      schedule,
      sc,
      cfg: used,
      replay,
    } = await scheduleMain(values, cfg, f, recorder ? recordHooks(recorder) : {});
    visuals.write(stressPage(r, replay, recorder));
    process.stdout.write(
      (json ? JSON.stringify({ ...r, log: undefined }, null, 2) : formatReport(r, 1, replay)) + '\n',
    );
    outputs.write('--save', savePath, (p) =>
      writeSavedStress(p, { ...r, config: used, scenario: sc?.name ?? null, schedule }),
    );
    return outputs.finish(r.verdict === 'clean' ? 0 : 1);
  }

  const duration = values.duration === undefined ? 0 : f.num('--duration', values.duration, 0, 86_400, 0);
  const runs = f.int('--runs', values.runs, 1, 1_000_000, duration ? 1_000_000 : 1);
  const shard = parseShard(values.shard, values.runs !== undefined, f);
  const seeds = campaignSeeds(cfg.seed, runs, shard);
  const jobs = Math.min(f.int('--jobs', values.jobs, 1, 256, defaultJobs()), seeds.length);
  // a shard is a slice a batch system hands out: it runs to its end, so that shards add up
  const keepGoing = values['keep-going'] === true || shard !== null;
  const t0 = Date.now();
  let done = 0;
  let bad = 0;
  const label = (): string =>
    `${done}/${seeds.length} seed(s)${bad ? `, ${bad} with violations` : ''}${duration ? `, ${((Date.now() - t0) / 1000).toFixed(0)}/${duration} s` : ''}${jobs > 1 ? `, ${jobs} jobs` : ''}`;
  const running = new Set<number>();
  onInterrupt('stress', () => {
    const now = [...running].sort((a, b) => a - b);
    return `${done} run(s) finished, ${bad} with violations; seed${now.length > 1 ? 's' : ''} ${now.join(', ') || '-'} ${now.length > 1 ? 'were' : 'was'} running; rerun it with: ${stressCommand({ ...cfg, seed: now[0] ?? cfg.seed })}`;
  });
  const single = seeds.length === 1;
  const campaign = await runCampaign(cfg, {
    seeds,
    jobs,
    keepGoing,
    ...(duration ? { durationMs: duration * 1000 } : {}),
    onStart: (seed) => running.add(seed),
    onSeed: (r, n) => {
      running.delete(r.seed);
      done = n;
      if (r.verdict === 'violation') bad++;
      if (!single)
        bar(
          label(),
          duration ? Math.min(Date.now() - t0, duration * 1000) : n,
          duration ? duration * 1000 : seeds.length,
        );
    },
    ...(single ? { onProgress: (d: number, t: number) => bar(`seed ${seeds[0]}`, d, t) } : {}),
  });
  bar('done', 1, 1);
  const r = campaign.report;
  const rerun = (x: StressReport): string => stressCommand(x.config, { workers: x.workers });
  if (visuals.wanted) {
    // the reported seed once more, in this thread, watched (a seed is a pure function of its number)
    const recorder = visuals.fresh()!;
    const again = await runSeed(cfg, r.seed, recordHooks(recorder), recorder);
    visuals.write(stressPage(again, rerun(again), recorder));
  }
  const n = campaign.results.length;
  const summary = CampaignSchema.parse({
    format: 'percpu-sim-campaign',
    version: 1,
    base: cfg.seed,
    runs,
    shard,
    jobs,
    keepGoing,
    config: cfg,
    seeds: campaign.results,
    skipped: campaign.skipped,
  });
  if (json) process.stdout.write(JSON.stringify({ ...r, log: undefined, runs: n, campaign: summary }, null, 2) + '\n');
  else process.stdout.write(formatReport(r, n, rerun(r)) + (single ? '' : `\n${campaignLine(summary)}`) + '\n');
  outputs.write('--save', savePath, (p) => writeSavedStress(p, { ...r, scenario: null, schedule: null }));
  return outputs.finish(campaign.results.every((x) => x.verdict === 'clean') ? 0 : 1);
}

/** --shard K/N: the K-th of N slices of the campaign's seeds (needs --runs: a slice of what?). */
function parseShard(v: unknown, haveRuns: boolean, f: Flags): Shard | null {
  if (v === undefined) return null;
  const m = /^(\d+)\/(\d+)$/.exec(String(v));
  if (!m) return f.fail(`--shard takes K/N, the K-th of N slices, such as 2/8 (got "${String(v)}")`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > 100_000 || index < 1 || index > count)
    f.fail(`--shard ${String(v)}: K must be in [1, N] and N in [1, 100000]`);
  if (!haveRuns) f.fail('--shard slices a campaign of --runs N seeds; give --runs');
  return { index, count };
}

/** One line on a campaign: how many seeds, which failed, which were skipped. */
export function campaignLine(c: {
  seeds: readonly SeedResult[];
  shard: Shard | null;
  skipped: number;
  jobs?: number;
}): string {
  const bad = c.seeds.filter((x) => x.verdict === 'violation').map((x) => x.seed);
  const range = c.seeds.length
    ? ` (${c.seeds[0]!.seed}..${c.seeds.at(-1)!.seed}${c.shard ? `, shard ${c.shard.index}/${c.shard.count}` : ''})`
    : '';
  return `campaign: ${c.seeds.length} seed(s)${range}${c.jobs && c.jobs > 1 ? ` on ${c.jobs} jobs` : ''}; ${bad.length ? `violations in seed(s) ${bad.join(', ')}` : 'all clean'}${c.skipped ? `; ${c.skipped} not run` : ''}`;
}

export function mutantsMain(json: boolean): number {
  const list = MUTANT_NAMES.map((name) => ({ name, bug: MUTANTS[name].bug, caught_by: [...MUTANTS[name].caught_by] }));
  if (json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
  else {
    const out = ['Historical percpu bugs that --mutant NAME brings back (percpu-sim stress --mutant NAME):', ''];
    for (const m of list) out.push(`${m.name}`, `  ${m.bug}`, `  caught by: ${m.caught_by.join(', ')}`, '');
    process.stdout.write(out.join('\n'));
  }
  return 0;
}

export async function replayRunMain(
  file: string,
  json: boolean,
  f: Flags,
  visuals: Visuals | null = null,
): Promise<number> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    return f.fail(`cannot read ${file}: ${(e as Error).message}`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format === 'percpu-sim-run-log') {
    const parsed = SavedRunLogSchema.safeParse(raw);
    if (!parsed.success) return f.fail(`${file} is not a valid run log: ${schemaErrors(parsed.error)}`);
    const log = parsed.data;
    const recorder = visuals?.fresh() ?? null;
    const r = replayRunLog(log, recorder ?? undefined);
    const same = r.mismatches.length === 0 && r.sameFinalState;
    for (const m of r.mismatches) recorder?.violation(null, `replay differs: ${m}`);
    visuals?.write({
      title: `percpu-sim replay-run ${file}: ${log.workload}, ${log.config.cpus} CPUs, without workers`,
      verdict: {
        label: same ? 'REPRODUCED' : 'NOT REPRODUCED',
        ok: same,
        seed: log.seed,
        replay: replayRunCommand(file),
        notes: [
          `${r.requests} allocator requests replayed; the recorded run's verdict was ${log.verdict}`,
          ...(r.sameFinalState ? [] : ['the final allocator state differs from the recording']),
        ],
      },
    });
    if (json) process.stdout.write(JSON.stringify({ reproduced: same, ...r }, null, 2) + '\n');
    else
      process.stdout.write(
        `replayed ${r.requests} allocator requests of ${log.workload} (seed ${log.seed}) without workers\n` +
          (r.mismatches.length
            ? r.mismatches
                .slice(0, 10)
                .map((m) => `  ${m}\n`)
                .join('')
            : '') +
          `${same ? 'reproduced: the same replies and the same final allocator state' : `NOT reproduced: ${r.mismatches.length} different replies${r.sameFinalState ? '' : ', a different final state'}`}\n`,
      );
    return same ? 0 : 1;
  }
  if (format !== 'percpu-sim-stress')
    return f.fail(
      `${file} is not a saved run: its "format" is ${JSON.stringify(format ?? null)}, not "percpu-sim-stress" (stress --save) or "percpu-sim-run-log" (run --save)`,
    );
  const parsed = SavedStressSchema.safeParse(raw);
  if (!parsed.success) return f.fail(`${file} is not a valid saved stress run: ${schemaErrors(parsed.error)}`);
  const saved = parsed.data;
  if (saved.version === 1 && saved.schedule)
    return f.fail(
      `${file} holds a schedule of an older exploration (choice numbers); explore again to get one by task names`,
    );
  const sc = saved.scenario ? scenario(saved.scenario) : null;
  if (saved.scenario && !sc) return f.fail(`${file}: scenario: this version has no scenario "${saved.scenario}"`);
  const config = saved.config;
  const bar = f.progress(json);
  onInterrupt('replay-run', () => `replaying ${file} (seed ${config.seed}); rerun with: ${replayRunCommand(file)}`);
  const recorder = visuals?.fresh() ?? null;
  const hooks = recorder ? recordHooks(recorder) : {};
  const schedule = saved.schedule as string[] | null;
  const r = schedule
    ? (await runSchedule(config, schedule, { ...(sc ? { programs: sc.programs } : {}), ...hooks })).report
    : await runStress(config, { onProgress: (d, t) => bar(`replaying seed ${config.seed}`, d, t), ...hooks });
  bar('done', 1, 1);
  const replay = stressCommand(config, { scenario: saved.scenario, schedule, workers: r.workers });
  visuals?.write(stressPage(r, replayRunCommand(file), recorder));
  const first = (x: readonly { checker: string; kind: string; message: string }[]) =>
    x[0] ? `${x[0].checker}/${x[0].kind}: ${x[0].message}` : 'none';
  const same = r.verdict === saved.verdict && first(r.violations) === first(saved.violations);
  if (json)
    process.stdout.write(
      JSON.stringify(
        {
          reproduced: same,
          saved: { verdict: saved.verdict, first: first(saved.violations) },
          replayed: { verdict: r.verdict, first: first(r.violations) },
        },
        null,
        2,
      ) + '\n',
    );
  else
    process.stdout.write(
      `${formatReport(r, 1, replay)}\n${same ? 'reproduced: the replay ends exactly as the saved run did' : `NOT reproduced: the saved run ended with ${first(saved.violations)}`}\n`,
    );
  return r.verdict === 'clean' ? 0 : 1;
}
