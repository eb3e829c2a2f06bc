/**
 * `percpu-sim stress`: seeded stress of the whole machine (one seed, a campaign of seeds, or
 * the same program on worker threads), and exploration of a scenario's schedules (explore.ts).
 */
import { violationLine } from '../check/violation.ts';
import { inOrder } from '../report/run-report.ts';
import { rangeOf } from '../files/bounds.ts';
import {
  DEFAULT_STRESS,
  type StressConfig,
  StressArgsSchema,
  StressConfigSchema,
  resolveMachine,
} from '../files/config.ts';
import { replayRunCommand, stressCommand } from '../files/rerun.ts';
import { coverageLines } from '../check/coverage.ts';
import { CampaignSchema, type Shard, ShardSchema, writeSavedStress } from '../files/saved.ts';
import { saveRunLog } from '../smp/run-log.ts';
import {
  campaignSeeds,
  controlledRound,
  defaultJobs,
  runCampaign,
  runSeed,
  stressOnWorkers,
} from '../stress/campaign.ts';
import type { StressReport } from '../stress/engine.ts';
import {
  CHECK_OPTIONS,
  type Command,
  MACHINE_OPTIONS,
  UsageError,
  cpuNodesFlag,
  distanceFlag,
  int,
  num,
  interrupted,
  onInterrupt,
  parse,
  parseMutant,
  progressBar,
  seedList,
  usage,
} from './common.ts';
import { intIn, numIn, oneOfIn } from './schema-flags.ts';
import { exploreMain, scenariosHelp, scheduleMain } from './explore.ts';
import { Outputs } from './outputs.ts';
import { campaignLine, formatStressReport, recordHooks, runPage, stressPage } from './reports.ts';
import { HTML_OPTION, TRACE_OPTION, Visuals } from './visuals.ts';

const S = StressConfigSchema.shape;
const A = StressArgsSchema.shape;
const C = CampaignSchema.shape;

export const STRESS_OPTIONS = {
  ...MACHINE_OPTIONS,
  'max-delay': { type: 'string' },
  granularity: { type: 'string' },
  'no-races': { type: 'boolean' },
  'no-lockdep': { type: 'boolean' },
  'no-reference': { type: 'boolean' },
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
  controlled: { type: 'boolean' },
  word: { type: 'string' },
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
  --cpu-nodes LIST      the node of every CPU: "0,1,0,1" or ranges "0-15:0,16-31:1"
                        (default: CPUs in blocks per node); sets --cpus and --nodes if not given
  --distance D          node distance: one remote distance ("21") or the table, rows split
                        by "/" ("10,21/21,10"); default 10 local, 20 remote
  --backend vm|km|auto  chunk backend (default auto: vm on even seeds, km on odd ones)
  --memory MIB          physical memory (default ${DEFAULT_STRESS.memoryMiB})
  --seed N              the run's seed (default 1)
  --policy P            random (uniform choice, random delays; default), pct (PCT-style
                        priorities with rare preemptions) or pos (partial-order sampling:
                        random priorities, redrawn where steps conflict)
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
                        here ${defaultJobs()}; at most the seeds to run, and more than the cores
                        only shares them); every seed is still a pure function of its number
  --keep-going          run every seed, not stopping at the first violation; each violating
                        seed's first finding and rerun line go to stderr as it is found
  --shard K/N           run only the K-th of N disjoint slices of the --runs seeds (every N-th
                        seed), to the end; percpu-sim merge joins the shards' --json reports
Checking:
  --mutant NAME         put a historical or invented bug back (see percpu-sim mutants)
  --strict              report schedule_work() under pcpu_lock as a violation, not as the
                        known 2.6.36 dependency
  --no-races            switch off the data-race detector (lockset and happens-before)
  --no-lockdep          ignore the kernel's own lockdep_assert_held() calls (the race
                        detector finds a missing lock without them)
  --no-reference        do not hold every operation against the 2.6.36 reference model
                        (placement, routing, area maps and hints, map extension, chunk
                        creation, population and its NUMA node, reclaim, late init,
                        pcpu_lock handover order)
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
                        separated (0.3 is CPU 0's fourth request, k.0 the reclaim worker);
                        a name that is not ready at its choice point is an error
Other:
  --workers             run the same program on real worker threads instead (true
                        parallelism; a failure there replays through its saved event log).
                        It starts with a torn-access probe: two CPUs store and load each
                        width and kind of access at once, and a load that is not one
                        store's, or a counter sum that lost an atomic add, is reported
  --controlled          on worker threads, one CPU per thread, but each thread parks at every
                        shared-memory operation of the data path (generation and page-table
                        reads, TLB fills, each half of a split access, atomics), every request
                        and every reply, and the scheduler (--policy random or pct) picks who
                        goes on: the run is a function of its seed, and --save / replay-run
                        reproduce it whole (the same violations, the same final memory). As
                        another vmalloc user's vunmap would, the scheduler flushes the TLB
                        (bumps the page-table generation) now and then as it lets a CPU go
                        from inside a TLB fill. The default campaign runs every tenth seed
                        this way, every other fifth on free threads.
  --word 32|64          the machine's word (default 64): on 32, plain 64-bit per-CPU accesses
                        of controlled runs are two 32-bit ones with a scheduling point between,
                        and the race detector reports a torn read or write; the probe of
                        --workers leaves plain 64-bit values out (they may tear there)
  --save FILE           save the run for percpu-sim replay-run
  --trace FILE          the last run as a Chrome trace, for https://ui.perfetto.dev or
                        chrome://tracing (an exploration: trace one --schedule)
  --html FILE           the last run as a self-contained HTML report, with the coverage
                        (a campaign's, summed) as a heat map
  --json                print the report as JSON; campaign.coverage is the whole coverage table
  --verbose             show where an internal error happened (its stack)
  -h, --help            this text

Every run records its concurrency coverage: which kernel functions were in flight together,
which conflicting accesses to a shared object were seen in both orders, which sleep points
ran while another CPU was inside the allocator, which lifecycle states and failure reasons
were reached. The summary follows the verdict; a campaign's says what was never reached.

Scenarios (--explore --scenario NAME):
${scenariosHelp()}

Exit status: 0 when clean, 1 when a violation was found, 2 for bad usage or bad input, 3 when
a --workers run stopped making progress (timed out), 70 for an internal error (--verbose shows
where), 130/143 on SIGINT or SIGTERM: a campaign then writes the report of the seeds that
finished (the others are not run; merge lists them as missing) and the files of the last
one, and an exploration what it found in the schedules so far.

Examples:
  percpu-sim stress --seed 7 --duration 30
  percpu-sim stress --mutant reclaim-drops-mutex --duration 60
  percpu-sim stress --explore --scenario extend-vs-free --mutant extend-stale-walk
  percpu-sim stress --explore --cpus 2 --ops 4 --preemptions 2`;

/** The configuration a stress command line asks for (--explore and --schedule adapt it, see explore.ts). */
export function stressConfig(values: Record<string, unknown>): StressConfig {
  const mutant = parseMutant(values.mutant);
  const d = DEFAULT_STRESS;
  const map = cpuNodesFlag(
    values['cpu-nodes'],
    values.cpus !== undefined ? intIn('--cpus', values.cpus, S.cpus, d.cpus) : undefined,
    values.nodes !== undefined ? int('--nodes', values.nodes, 1, rangeOf(S.nodes).max, d.nodes) : undefined,
  );
  if (map && map.cpus > rangeOf(S.cpus).max)
    usage(`--cpu-nodes places ${map.cpus} CPUs; stress takes at most ${rangeOf(S.cpus).max}`);
  const cpus = map?.cpus ?? intIn('--cpus', values.cpus, S.cpus, d.cpus);
  // nodes 0, the seed's choice, is what leaving the flag out asks for
  const nodes = map?.nodes ?? int('--nodes', values.nodes, 1, rangeOf(S.nodes).max, d.nodes);
  if (values.distance !== undefined && nodes === 0)
    usage('--distance needs the node count: give --nodes or --cpu-nodes');
  const distance = distanceFlag(values.distance, nodes);
  if (nodes > cpus) usage(`--nodes ${nodes} is more than --cpus ${cpus}: every node needs a CPU`);
  if (values.controlled) values.workers = true;
  if (values.workers && (values.duration !== undefined || values.runs !== undefined))
    usage('--workers runs one seed on real threads; --duration and --runs are for the deterministic engine');
  if (values.workers && (values.explore || values.schedule !== undefined))
    usage(
      '--workers runs on real threads, which cannot be explored or steered; --explore and --schedule use the deterministic engine',
    );
  for (const flag of ['runs', 'duration'])
    if (values[flag] !== undefined && (values.explore || values.schedule !== undefined))
      usage(
        `--${flag} is for a campaign of seeds; --explore and --schedule run one seed's program through its schedules (give --seed)`,
      );
  for (const flag of ['jobs', 'shard', 'keep-going'])
    if (values[flag] !== undefined && (values.workers || values.explore || values.schedule !== undefined))
      usage(`--${flag} is for a campaign of seeds (--runs or --duration), not for --workers, --explore or --schedule`);
  for (const flag of ['preemptions', 'no-reduction', 'max-schedules', 'max-seconds'])
    if (values[flag] !== undefined && !values.explore) usage(`--${flag} is for --explore`);
  if (values.scenario !== undefined && !values.explore && values.schedule === undefined)
    usage('--scenario is for --explore or --schedule');
  if (values.explore && (values.trace !== undefined || values.html !== undefined))
    usage(
      '--trace and --html draw one run; an exploration runs many: rerun the schedule it prints with --schedule and --trace or --html',
    );
  return {
    seed: intIn('--seed', values.seed, S.seed, d.seed),
    cpus,
    nodes,
    ...(map ? { cpuToNode: map.cpuToNode } : {}),
    ...(distance ? { distance } : {}),
    backend: oneOfIn('--backend', values.backend, S.backend, d.backend),
    memoryMiB: intIn('--memory', values.memory, S.memoryMiB, d.memoryMiB),
    policy: oneOfIn('--policy', values.policy, S.policy, d.policy),
    granularity: oneOfIn('--granularity', values.granularity, S.granularity, d.granularity),
    maxDelay: intIn('--max-delay', values['max-delay'], S.maxDelay, d.maxDelay),
    failRate: numIn('--fail-rate', values['fail-rate'], S.failRate, d.failRate),
    mutant: mutant ?? null,
    strict: values.strict === true,
    races: values['no-races'] !== true,
    lockdep: values['no-lockdep'] !== true,
    reference: values['no-reference'] !== true,
    count: values.count === true,
    word: wordFlag(values.word),
    args: {
      ops: intIn('--ops', values.ops, A.ops, d.args.ops),
      allocPct: intIn('--alloc-pct', values['alloc-pct'], A.allocPct, d.args.allocPct),
      reservedPct: intIn('--reserved-pct', values['reserved-pct'], A.reservedPct, d.args.reservedPct),
      sizes: oneOfIn('--sizes', values.sizes, A.sizes, d.args.sizes),
      maxAlignShift: intIn('--max-align-shift', values['max-align-shift'], A.maxAlignShift, d.args.maxAlignShift),
      maxLive: intIn('--max-live', values['max-live'], A.maxLive, d.args.maxLive),
      earlyOps: intIn('--early-ops', values['early-ops'], A.earlyOps, d.args.earlyOps),
    },
  };
}

export const stress: Command = {
  summary: 'seeded stress with every checker on; prints a seed that replays any failure',
  help: STRESS_HELP,
  async run(argv) {
    const { values, positionals } = parse(argv, STRESS_OPTIONS);
    if (positionals.length) throw new UsageError(`stress takes no arguments, got ${positionals.join(' ')}`);
    return stressMain(values);
  },
};

async function stressMain(values: Record<string, unknown>): Promise<number> {
  const cfg = stressConfig(values);
  const outputs = new Outputs('stress');
  const savePath = outputs.claim('--save', values.save);
  const visuals = new Visuals(outputs, values);
  const json = values.json === true;
  const bar = progressBar(json);
  if (values.workers) {
    Object.assign(cfg, resolveMachine(cfg));
    const recorder = visuals.fresh();
    const controlled = values.controlled === true;
    if (controlled && cfg.policy !== 'random' && cfg.policy !== 'pct')
      usage('--controlled picks threads with --policy random or pct');
    const r = await stressOnWorkers(cfg, {
      onProgress: bar,
      ...(recorder ? { recorder } : {}),
      ...(controlled ? controlledRound(cfg) : {}),
    });
    visuals.write({
      ...runPage(r),
      title: `percpu-sim stress --workers: ${cfg.cpus} CPUs, ${cfg.nodes} node(s), ${cfg.backend}`,
    });
    const { log: _l, fingerprint: _f, ...data } = r;
    process.stdout.write(
      json
        ? JSON.stringify(data, null, 2) + '\n'
        : `percpu-sim stress --workers: ${cfg.cpus} CPUs on ${r.threads.count} worker threads, ${cfg.nodes} node(s), ${cfg.backend}, seed ${cfg.seed}${cfg.mutant ? `, mutant ${cfg.mutant}` : ''}\n${r.verdict === 'pass' ? 'verdict: CLEAN' : `verdict: ${r.verdict === 'timeout' ? 'TIMEOUT' : 'VIOLATION'} (${r.violations.length})`}\n${inOrder(
            r.violations,
          )
            .map((v) => `  ${violationLine(v)}`)
            .join(
              '\n',
            )}${r.violations.length ? '\n' : ''}seed: ${cfg.seed}\nrerun: ${stressCommand(cfg, { workers: true, controlled })}${savePath !== undefined ? `\nreplay ${controlled ? 'the whole run' : "the allocator's side"} exactly: ${replayRunCommand(savePath)}` : ''}\n`,
    );
    outputs.write('--save', savePath, (p) => saveRunLog(p, r));
    return outputs.finish(r.verdict === 'pass' ? 0 : r.verdict === 'timeout' ? 3 : 1);
  }
  if (values.explore) return exploreMain(values, cfg, bar, json, outputs, savePath);
  if (typeof values.schedule === 'string') {
    const recorder = visuals.fresh();
    const run = await scheduleMain(values, cfg, recorder ? recordHooks(recorder) : {});
    const r = run.report;
    visuals.write(stressPage(r, run.replay, recorder));
    process.stdout.write(
      (json ? JSON.stringify({ ...r, log: undefined }, null, 2) : formatStressReport(r, 1, run.replay)) + '\n',
    );
    outputs.write('--save', savePath, (p) =>
      writeSavedStress(p, { ...r, config: run.cfg, scenario: run.sc?.name ?? null, schedule: run.schedule }),
    );
    return outputs.finish(r.verdict === 'clean' ? 0 : 1);
  }

  const duration = values.duration === undefined ? 0 : num('--duration', values.duration, 0, 86_400, 0);
  const runs = intIn('--runs', values.runs, C.runs, duration ? rangeOf(C.runs).max : 1);
  const shard = parseShard(values.shard, values.runs !== undefined);
  const seeds = campaignSeeds(cfg.seed, runs, shard);
  // more threads than seeds would only wait
  const jobs = Math.min(intIn('--jobs', values.jobs, C.jobs, defaultJobs()), seeds.length);
  if (jobs > defaultJobs())
    process.stderr.write(
      `percpu-sim stress: --jobs ${jobs} is more than the ${defaultJobs()} core(s) here: the seeds share them, each runs that much slower, and the campaign ends no sooner\n`,
    );
  // a shard is a slice a batch system hands out: it runs to its end, so that shards add up
  const keepGoing = values['keep-going'] === true || shard !== null;
  const t0 = Date.now();
  let done = 0;
  let bad = 0;
  // a --duration campaign runs seeds until its time is up: its count of seeds is no goal
  const label = (): string =>
    `${duration ? done : `${done}/${seeds.length}`} seed(s)${bad ? `, ${bad} with violations` : ''}${duration ? `, ${Math.floor((Date.now() - t0) / 1000)}/${duration} s` : ''}${jobs > 1 ? `, ${jobs} jobs` : ''}`;
  const running = new Set<number>();
  const stop = new AbortController();
  onInterrupt(
    'stress',
    () => {
      const now = [...running].sort((a, b) => a - b);
      return `${done} run(s) finished, ${bad} with violations; seed${now.length > 1 ? 's' : ''} ${now.length ? seedList(now) : '-'} ${now.length > 1 ? 'were' : 'was'} running; rerun it with: ${stressCommand({ ...cfg, seed: now[0] ?? cfg.seed })}`;
    },
    { drain: stop },
  );
  const single = seeds.length === 1;
  const foundLine = (r: StressReport): void => {
    const v = r.violations[0];
    const what = v ? violationLine(v).split('\n')[0] : 'violation';
    const tty = process.stderr.isTTY === true;
    process.stderr.write(
      `${tty ? '\r\x1b[K' : ''}seed ${r.seed} after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}\n  rerun: ${r.rerun}\n`,
    );
  };
  const campaign = await runCampaign(cfg, {
    seeds,
    jobs,
    keepGoing,
    signal: stop.signal,
    ...(duration ? { durationMs: duration * 1000 } : {}),
    onStart: (seed) => running.add(seed),
    onSeed: (r, n) => {
      running.delete(r.seed);
      done = n;
      if (r.verdict === 'violation') {
        bad++;
        // a campaign that goes on says what it found at once, not only when it ends
        if (keepGoing && !json) foundLine(r);
      }
      if (!single)
        bar(label(), duration ? Math.min(Math.floor((Date.now() - t0) / 1000), duration) : n, duration || seeds.length);
    },
    ...(single ? { onProgress: (d: number, t: number) => bar(`seed ${seeds[0]}`, d, t) } : {}),
  });
  const signal = interrupted();
  if (!signal) bar('done', 1, 1);
  const r = campaign.report;
  if (visuals.wanted && r) {
    // the reported seed once more, in this thread, watched (a seed is a pure function of its number)
    const recorder = visuals.fresh()!;
    const again = await runSeed(cfg, r.seed, recordHooks(recorder), recorder);
    visuals.write({ ...stressPage(again, again.rerun, recorder), ...(single ? {} : { coverage: campaign.coverage }) });
  } else visuals.unwritten('no seed finished before the signal');
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
    interrupted: signal,
    coverage: campaign.coverage,
  });
  if (json)
    process.stdout.write(
      JSON.stringify({ ...(r ? { ...r, log: undefined } : {}), runs: n, campaign: summary }, null, 2) + '\n',
    );
  else {
    const out = r ? [formatStressReport(r, n, r.rerun, cfg)] : [`percpu-sim stress: no seed finished`];
    if (!single || !r) out.push(campaignLine({ ...summary, ...(duration ? { durationS: duration } : {}) }));
    out.push(...coverageLines(campaign.coverage, { never: single ? 0 : 6 }));
    if (signal && campaign.notRun.length)
      out.push(
        duration
          ? `interrupted (${signal}) before --duration ${duration} s ended`
          : `interrupted (${signal}); not run: seed(s) ${seedList(campaign.notRun)}`,
      );
    process.stdout.write(out.join('\n') + '\n');
  }
  if (r) outputs.write('--save', savePath, (p) => writeSavedStress(p, { ...r, scenario: null, schedule: null }));
  else outputs.unwritten('--save', savePath, 'no seed finished before the signal');
  return outputs.finish(campaign.results.every((x) => x.verdict === 'clean') ? 0 : 1);
}

/** --word 32|64: the machine's word. */
function wordFlag(v: unknown): 32 | 64 {
  if (v === undefined) return 64;
  if (v === '32' || v === '64') return Number(v) as 32 | 64;
  return usage(`--word takes 32 or 64, got "${String(v)}"`);
}

/** --shard K/N: the K-th of N slices of the campaign's seeds (needs --runs: a slice of what?). */
function parseShard(v: unknown, haveRuns: boolean): Shard | null {
  if (v === undefined) return null;
  const m = /^(\d+)\/(\d+)$/.exec(String(v));
  if (!m) return usage(`--shard takes K/N, the K-th of N slices, such as 2/8 (got "${String(v)}")`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  const { min, max } = rangeOf(ShardSchema.innerType().shape.count);
  if (count < min || count > max || index < min || index > count)
    usage(`--shard ${String(v)}: K must be in [${min}, N] and N in [${min}, ${max}]`);
  if (!haveRuns) usage('--shard slices a campaign of --runs N seeds; give --runs');
  return { index, count };
}
