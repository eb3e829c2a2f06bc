/**
 * The stress engine. Every simulated CPU runs the stress program (program.ts) against the
 * real allocator, the real scheduler and the real shared memory, with all checkers on. The
 * CPUs run as coroutines on one thread and the scheduler takes one step at a time, so a run
 * is a pure function of its seed: any failure it finds replays exactly from the seed alone.
 * (`percpu-sim run stress` runs the same program on real worker threads.)
 *
 * Checks after every step: the allocator's invariants (whenever pcpu_lock is free), the lock
 * rules (every event), per-CPU isolation (every write, and every new area), kernel BUGs, data
 * corruption, and the page accounting whenever the allocator is idle and at the end.
 */
import { type Granularity, type KernelAccess, Scheduler, type Policy } from '../sim/scheduler.ts';
import { formatEvent } from '../sim/format-event.ts';
import type { ActorEvent, Reply, Request } from '../sim/events.ts';
import { checkAllocator, checkPageAccounting } from '../check/allocator.ts';
import { AreaOracle } from '../check/areas.ts';
import { IsolationTracker } from '../check/isolation.ts';
import { LockChecker } from '../check/locks.ts';
import { LockModel } from '../check/lock-model.ts';
import { RaceDetector } from '../check/races.ts';
import type { PcpuChunk } from '../kernel/chunk.ts';
import type { Percpu } from '../kernel/percpu.ts';
import { makeKernelImage } from '../kernel/image.ts';
import type { MutantName } from '../kernel/mutants.ts';
import { type BackendKind, DEFAULT_STATIC_SIZE, mm_init, setup_per_cpu_areas } from '../kernel/setup.ts';
import { Machine } from '../mem/machine.ts';
import { Prng } from '../util/prng.ts';
import { type CpuContext, IsolationError, PerCpu, PercpuError } from '../api/per-cpu.ts';
import {
  type Area,
  CorruptionError,
  DEFAULT_STRESS_ARGS,
  STRESS_VARS,
  StopError,
  type StressArgs,
  type StressCpuResult,
  stressCpu,
  stressEarly,
} from './program.ts';

export interface StressConfig {
  seed: number;
  cpus: number;
  /** NUMA nodes; 0 lets the seed choose (see resolveMachine) */
  nodes: number;
  /** 'auto' lets the seed choose */
  backend: BackendKind | 'auto';
  memoryMiB: number;
  policy: Exclude<Policy, 'choice'>;
  /** where the scheduler may preempt a task */
  granularity: Granularity;
  maxDelay: number;
  /** fraction of page allocations that fail */
  failRate: number;
  mutant: MutantName | null;
  strict: boolean;
  /** the data-race detector (lockset and happens-before) */
  races: boolean;
  /** the kernel's own lockdep_assert_held() calls (documentation; the detector does not need them) */
  lockdep: boolean;
  /** count violations and go on instead of stopping at the first */
  count: boolean;
  args: StressArgs;
}

export const DEFAULT_STRESS: StressConfig = {
  seed: 1,
  cpus: 3,
  nodes: 0,
  backend: 'auto',
  memoryMiB: 64,
  policy: 'random',
  granularity: 'access',
  maxDelay: 4,
  failRate: 0.005,
  mutant: null,
  strict: false,
  races: true,
  lockdep: true,
  count: false,
  args: DEFAULT_STRESS_ARGS,
};

export type Checker =
  'allocator' | 'locks' | 'races' | 'scheduler' | 'isolation' | 'areas' | 'kernel-bug' | 'pages' | 'data' | 'workers';

export interface Violation {
  checker: Checker;
  kind: string;
  cpu: number;
  tick: number;
  message: string;
}

export interface StressReport {
  seed: number;
  config: StressConfig;
  verdict: 'clean' | 'violation';
  violations: Violation[];
  /** the events just before the first violation, one line each */
  history: string[];
  ticks: number;
  requests: number;
  knownLockIssues: number;
  cpus: StressCpuResult[];
  ms: number;
  /** the full event log (for saving a run) */
  log: ActorEvent[];
}

export interface EngineHooks {
  /** scheduling choices for exploration (policy 'choice') */
  chooser?: (ready: readonly number[]) => number;
  onProgress?: (done: number, total: number) => void;
  /** keep the whole event log in the report */
  keepLog?: boolean;
  /** called with the booted allocator before anything runs: how tests bring a bug in */
  inject?: (pc: Percpu) => void;
  /** every scheduler event and every shared-object access, as they happen (exploration) */
  onEvent?: (e: ActorEvent) => void;
  onAccess?: (a: KernelAccess) => void;
  /** a scripted scenario instead of the stress program: what the boot CPU does before slab, and what each CPU does after */
  programs?: ScenarioPrograms;
}

/**
 * The CPU programs of a scripted scenario (see src/explore/scenarios.ts): the boot CPU before
 * slab; a prelude that sets the stage one request at a time; the racing part, on every CPU at
 * once; and a postlude that cleans up, again one request at a time.
 */
export interface ScenarioPrograms {
  early?: (cpu: PerCpu) => Promise<void>;
  prelude?: (cpus: readonly PerCpu[]) => Promise<void>;
  run: (cpu: PerCpu) => Promise<void>;
  postlude?: (cpus: readonly PerCpu[]) => Promise<void>;
  /** percpu_init_late() runs while the CPUs already allocate, instead of before */
  racingInitLate?: boolean;
}

/**
 * The machine a seed runs on when the configuration leaves it open: the backend alternates
 * with the seed (vm on even seeds, km on odd ones) and the node count cycles through 1 to 4
 * (never more nodes than CPUs), so a campaign covers both backends and NUMA by default.
 */
export function resolveMachine(cfg: StressConfig): { backend: BackendKind; nodes: number } {
  const backend = cfg.backend === 'auto' ? (cfg.seed % 2 ? 'km' : 'vm') : cfg.backend;
  const nodes = cfg.nodes === 0 ? 1 + (Math.floor(cfg.seed / 2) % Math.min(4, cfg.cpus)) : cfg.nodes;
  return { backend, nodes };
}

/** Every chunk the allocator has, the reserved one included. */
function chunksOf(pc: Percpu): PcpuChunk[] {
  return [...pc.chunks.values(), ...(pc.pcpu_reserved_chunk ? [pc.pcpu_reserved_chunk] : [])];
}

/** A checker's findings, as the engine collects them. */
interface Findings {
  checker: Checker;
  list: readonly { kind: string; cpu: number; tick?: number; message: string }[];
  seen: number;
}

export async function runStress(config: StressConfig, hooks: EngineHooks = {}): Promise<StressReport> {
  const t0 = performance.now();
  const cfg: StressConfig = { ...config, ...resolveMachine(config) };
  const backend = cfg.backend as BackendKind;
  const machine = new Machine({
    cpus: cfg.cpus,
    nodes: cfg.nodes,
    memoryBytes: cfg.memoryMiB * 1024 * 1024,
    shadow: true,
  });
  // percpu-km chunks are one block: one group, whatever the nodes
  const numa_groups = cfg.nodes > 1 && backend === 'vm';
  const pc = setup_per_cpu_areas(machine, {
    backend,
    numa_groups,
    image: makeKernelImage(DEFAULT_STATIC_SIZE, [...STRESS_VARS]),
    mutants: cfg.mutant ? [cfg.mutant] : [],
  });
  hooks.inject?.(pc);
  const violations: Violation[] = [];
  const ring: ActorEvent[] = [];
  const log: ActorEvent[] = [];
  let history: string[] = [];
  let requests = 0;
  let core: Scheduler | null = null;

  // the checkers; the lock model comes first, since the others ask it who holds what
  const model = new LockModel({ lockOwners: () => core!.lockOwners(), heldBy: (t) => core!.heldBy(t) });
  const locks = new LockChecker({ pc, strict: cfg.strict });
  const races = cfg.races ? new RaceDetector(model) : null;
  const tracker = new IsolationTracker(pc, cfg.seed, { groupsByNode: numa_groups });
  const reserved = pc.pcpu_reserved_chunk
    ? ([pc.pcpu_static_size, pc.pcpu_reserved_chunk_limit] as [number, number])
    : null;
  const areas = new AreaOracle({
    offsets: tracker.offsets,
    walk: tracker.walk,
    dynamic: [
      reserved ? reserved[1] : pc.pcpu_static_size,
      pc.pcpu_static_size + pc.pcpu_reserved_size + pc.pcpu_dyn_size,
    ],
    reserved,
  });
  const findings: Findings[] = [
    { checker: 'scheduler', list: model.faults, seen: 0 },
    { checker: 'races', list: races?.violations ?? [], seen: 0 },
    { checker: 'locks', list: locks.violations, seen: 0 },
    { checker: 'isolation', list: tracker.violations, seen: 0 },
    { checker: 'areas', list: areas.violations, seen: 0 },
  ];

  const stop = (): boolean => !cfg.count && violations.length > 0;
  const add = (v: Violation): void => {
    if (violations.length === 0) history = ring.map(formatEvent);
    if (violations.length < 50) violations.push(v);
  };
  const collect = (tick: number): void => {
    for (const f of findings)
      for (; f.seen < f.list.length; f.seen++) {
        const v = f.list[f.seen]!;
        add({ checker: f.checker, kind: v.kind, cpu: v.cpu, tick: v.tick ?? tick, message: v.message });
      }
  };

  const onEvent = (e: ActorEvent): void => {
    ring.push(e);
    if (ring.length > 40) ring.shift();
    if (hooks.keepLog) log.push(e);
    hooks.onEvent?.(e);
    model.observe(e);
    races?.observe(e);
    locks.observe(e);
    tracker.observe(e);
    areas.observe(e);
    if (e.type === 'bug')
      add({ checker: 'kernel-bug', kind: e.bug.code, cpu: e.cpu, tick: e.tick, message: e.bug.message });
    collect(e.tick);
  };

  core = new Scheduler(pc, {
    seed: cfg.seed,
    policy: hooks.chooser ? 'choice' : cfg.policy,
    granularity: cfg.granularity,
    maxDelay: cfg.maxDelay,
    lockdep: cfg.lockdep,
    onEvent,
    ...(races || hooks.onAccess
      ? {
          onAccess: (a: KernelAccess) => {
            hooks.onAccess?.(a);
            races?.access(a);
            collect(a.tick);
          },
          onDestroy: (task: number, cpu: number, chunk: PcpuChunk, where: string) => {
            races?.destroyed(task, cpu, chunk, where);
            collect(core!.tick);
          },
        }
      : {}),
    ...(hooks.chooser ? { chooser: hooks.chooser } : {}),
  });
  const c = core;
  c.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'boot' });
  collect(0);
  if (cfg.failRate > 0) machine.buddy.setFaultInjection({ failRate: cfg.failRate, prng: new Prng(cfg.seed ^ 0x5eed) });

  const offsets = [...pc.__per_cpu_offset];
  const static_vars: CpuContext['static_vars'] = {};
  for (const v of pc.image.vars) static_vars[v.name] = { ptr: pc.image.per_cpu_start + v.offset, size: v.size };
  const apis: PerCpu[] = [];
  for (let cpu = 0; cpu < cfg.cpus; cpu++) {
    const port = {
      request: (req: unknown): Promise<Reply> =>
        new Promise<Reply>((resolve) => {
          requests++;
          c.admit({ ...(req as Request), cpu }, resolve);
        }),
    };
    const ctx: CpuContext = {
      cpu,
      nr_cpus: cfg.cpus,
      seed: cfg.seed,
      per_cpu_offset: offsets,
      static_vars,
      barrier_timeout_ms: 120_000,
      check_isolation: true,
      count_violations: cfg.count,
    };
    apis.push(new PerCpu(ctx, port, machine.sab));
  }

  /** What ended a CPU program, as a violation (a stop after someone else's violation is none). */
  const failed = (cpu: number, e: Error): void => {
    if (e instanceof StopError) return;
    if (e instanceof IsolationError) {
      const v = tracker.describe(e.fault);
      add({ checker: 'isolation', kind: v.kind, cpu, tick: c.tick, message: v.message });
    } else if (e instanceof CorruptionError)
      add({ checker: 'data', kind: 'corruption', cpu, tick: c.tick, message: e.message });
    else if (e instanceof PercpuError) {
      if (!violations.some((v) => v.checker === 'kernel-bug'))
        add({ checker: 'kernel-bug', kind: e.code, cpu, tick: c.tick, message: e.message });
    } else add({ checker: 'kernel-bug', kind: 'oops', cpu, tick: c.tick, message: `${e.name}: ${e.message}` });
  };
  const counted = (api: PerCpu): void => {
    for (const f of api.faults.splice(0)) {
      const v = tracker.describe(f);
      add({ checker: 'isolation', kind: v.kind, cpu: api.cpu, tick: c.tick, message: v.message });
    }
  };

  const total = cfg.cpus * cfg.args.ops + cfg.args.earlyOps;
  let lastProgress = 0;
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
  /** Steps the scheduler, with the checks between steps, until `done()` or a violation has had time to spread. */
  const drive = async (done: () => boolean): Promise<void> => {
    let afterStop = 0;
    await turn();
    while (!done()) {
      const stuck = c.deadlock();
      if (stuck) {
        add({ checker: 'locks', kind: 'deadlock', cpu: -1, tick: c.tick, message: `deadlock: ${stuck}` });
        return;
      }
      if (!c.idle) {
        c.step();
        if (c.lockOwners().pcpu_lock === null && !stop())
          for (const v of checkAllocator(pc, { populated: false }))
            add({
              checker: 'allocator',
              kind: v.invariant,
              cpu: -1,
              tick: c.tick,
              message: `chunk ${v.chunk}: ${v.message}`,
            });
      } else if (!stop()) {
        const p = checkPageAccounting(pc);
        if (p) add({ checker: 'pages', kind: p.invariant, cpu: -1, tick: c.tick, message: p.message });
        areas.checkPopulated(c.tick);
        areas.checkMaps(chunksOf(pc), c.tick);
        collect(c.tick);
      }
      await turn();
      // after a violation, keep stepping a little so the other CPUs notice and stop
      if (stop() && ++afterStop > 10_000) break;
      if (hooks.onProgress && c.tick - lastProgress >= 500) {
        lastProgress = c.tick;
        hooks.onProgress(Math.min(total, requests), total);
      }
    }
  };

  /** Runs a scenario's prelude or postlude to its end (it issues one request at a time). */
  const sequential = async (part: (cpus: readonly PerCpu[]) => Promise<void>): Promise<void> => {
    let over = false;
    void part(apis).then(
      () => (over = true),
      (e: Error) => {
        over = true;
        failed(0, e);
      },
    );
    await drive(() => over && c.idle);
  };

  // early boot: the boot CPU allocates before slab is online, until the early map runs out
  c.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'early' });
  let early: Area[] = [];
  const script = hooks.programs;
  let earlyDone = script ? !script.early : cfg.args.earlyOps === 0;
  if (!earlyDone)
    void (script ? script.early!(apis[0]!).then(() => ({ live: [] })) : stressEarly(apis[0]!, cfg.args, stop)).then(
      (r) => {
        early = r.live;
        earlyDone = true;
      },
      (e: Error) => {
        earlyDone = true;
        failed(0, e);
      },
    );
  await drive(() => earlyDone && c.idle);
  counted(apis[0]!);

  const results: StressCpuResult[] = [];
  let finished = 0;
  if (!stop()) {
    mm_init(machine, pc);
    c.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'slabOnline' });
    if (!script?.racingInitLate) {
      c.admit({ kind: 'init_late', cpu: 0 }, () => {});
      c.drain();
    }
    c.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'running' });
    if (script?.prelude) await sequential(script.prelude);
    if (script?.racingInitLate) c.admit({ kind: 'init_late', cpu: 0 }, () => {});
    // the CPU programs report through `finished`, `results` and `add`; drive() runs them
    apis.forEach((api, cpu) => {
      void (script ? script.run(api).then(() => null) : stressCpu(api, cfg.args, stop, cpu === 0 ? early : [])).then(
        (r) => {
          if (r) results[cpu] = r;
          counted(api);
          finished++;
        },
        (e: Error) => {
          finished++;
          failed(cpu, e);
        },
      );
    });
    await drive(() => finished === cfg.cpus);
    if (script?.postlude && !stop()) await sequential(script.postlude);
  }
  if (!stop()) {
    c.drain();
    const p = checkPageAccounting(pc);
    if (p) add({ checker: 'pages', kind: p.invariant, cpu: -1, tick: c.tick, message: p.message });
    for (const v of checkAllocator(pc, { populated: false }))
      add({
        checker: 'allocator',
        kind: v.invariant,
        cpu: -1,
        tick: c.tick,
        message: `chunk ${v.chunk}: ${v.message}`,
      });
    areas.checkPopulated(c.tick);
    areas.checkMaps(chunksOf(pc), c.tick);
    if (areas.liveCount)
      add({
        checker: 'areas',
        kind: 'leak',
        cpu: -1,
        tick: c.tick,
        message: `leak: ${areas.liveCount} area(s) still live after every CPU freed what it allocated`,
      });
    collect(c.tick);
  }
  hooks.onProgress?.(total, total);
  return {
    seed: cfg.seed,
    config: cfg,
    verdict: violations.length ? 'violation' : 'clean',
    violations,
    history,
    ticks: c.tick,
    requests,
    knownLockIssues: locks.known.length,
    cpus: results.filter(Boolean),
    ms: performance.now() - t0,
    log,
  };
}

/** The command line that reruns a configuration exactly. */
export function stressCommand(config: StressConfig): string {
  const cfg = { ...config, ...resolveMachine(config) };
  const a = cfg.args;
  const parts = [
    'percpu-sim stress',
    `--seed ${cfg.seed}`,
    `--cpus ${cfg.cpus}`,
    `--nodes ${cfg.nodes}`,
    `--backend ${cfg.backend}`,
    `--memory ${cfg.memoryMiB}`,
    `--policy ${cfg.policy}`,
    `--granularity ${cfg.granularity}`,
    `--max-delay ${cfg.maxDelay}`,
    `--fail-rate ${cfg.failRate}`,
    `--ops ${a.ops}`,
    `--alloc-pct ${a.allocPct}`,
    `--reserved-pct ${a.reservedPct}`,
    `--sizes ${a.sizes}`,
    `--max-align-shift ${a.maxAlignShift}`,
    `--max-live ${a.maxLive}`,
    `--early-ops ${a.earlyOps}`,
  ];
  if (cfg.mutant) parts.push(`--mutant ${cfg.mutant}`);
  if (cfg.strict) parts.push('--strict');
  if (!cfg.races) parts.push('--no-races');
  if (!cfg.lockdep) parts.push('--no-lockdep');
  if (cfg.count) parts.push('--count');
  return parts.join(' ');
}
