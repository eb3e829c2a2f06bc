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
import { Scheduler, type Policy } from '../actor/scheduler.ts';
import type { ActorEvent, Reply, Request } from '../actor/types.ts';
import { checkAllocator, checkPageAccounting } from '../check/allocator.ts';
import { IsolationTracker } from '../check/isolation.ts';
import { LockChecker } from '../check/locks.ts';
import type { MutantName } from '../kernel/mutants.ts';
import { type BackendKind, mm_init, setup_per_cpu_areas } from '../kernel/setup.ts';
import { Machine } from '../mem/machine.ts';
import { Prng } from '../util/prng.ts';
import { type CpuContext, IsolationError, PerCpu, PercpuError } from '../../workers/cpu-api.ts';
import { CorruptionError, DEFAULT_STRESS_ARGS, StopError, type StressArgs, type StressCpuResult, stressCpu } from './program.ts';

export interface StressConfig {
  seed: number;
  cpus: number;
  nodes: number;
  backend: BackendKind;
  memoryMiB: number;
  policy: Exclude<Policy, 'choice'>;
  maxDelay: number;
  /** fraction of page allocations that fail */
  failRate: number;
  mutant: MutantName | null;
  strict: boolean;
  /** count violations and go on instead of stopping at the first */
  count: boolean;
  args: StressArgs;
}

export const DEFAULT_STRESS: StressConfig = {
  seed: 1,
  cpus: 3,
  nodes: 1,
  backend: 'vm',
  memoryMiB: 64,
  policy: 'random',
  maxDelay: 4,
  failRate: 0.005,
  mutant: null,
  strict: false,
  count: false,
  args: DEFAULT_STRESS_ARGS,
};

export type Checker = 'allocator' | 'locks' | 'isolation' | 'kernel-bug' | 'pages' | 'data';

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

/** One line per event, for histories. */
export function formatEvent(e: ActorEvent): string {
  const who = e.cpu === -1 ? 'kworker' : `cpu${e.cpu}`;
  const head = `#${e.seq} t${e.tick} ${who} task ${e.task}`;
  switch (e.type) {
    case 'arrive':
    case 'refuse':
      return `${head} ${e.type} ${e.req.kind}${'size' in e.req ? ` size=${e.req.size} align=${e.req.align}` : ''}${'ptr' in e.req ? ` ptr=${e.req.ptr.toString(16)}` : ''}`;
    case 'lock':
    case 'unlock':
      return `${head} ${e.type} ${e.lock}`;
    case 'block':
      return `${head} waits for ${e.lock} (held by task ${e.owner})`;
    case 'sleep':
      return `${head} sleeps in ${e.at}${e.chunk >= 0 ? ` (chunk ${e.chunk})` : ''} until t${e.until}`;
    case 'done':
      return `${head} done ${e.kind}: ${JSON.stringify(e.reply)}`;
    case 'bug':
      return `${head} BUG ${e.bug.code}: ${e.bug.message}`;
    case 'lockdep':
      return `${head} lockdep: ${e.where} without ${e.lock}`;
    case 'schedule_work':
      return `${head} schedule_work(pcpu_reclaim) holding [${e.held.join(', ')}]`;
    case 'lifecycle':
      return `${head} lifecycle ${e.state}`;
    default:
      return `${head} ${e.type}`;
  }
}

export interface EngineHooks {
  /** scheduling choices for exploration (policy 'choice') */
  chooser?: (ready: readonly number[]) => number;
  onProgress?: (done: number, total: number) => void;
  /** keep the whole event log in the report */
  keepLog?: boolean;
}

export async function runStress(cfg: StressConfig, hooks: EngineHooks = {}): Promise<StressReport> {
  const t0 = performance.now();
  const machine = new Machine({ cpus: cfg.cpus, nodes: cfg.nodes, memoryBytes: cfg.memoryMiB * 1024 * 1024, shadow: true });
  const pc = setup_per_cpu_areas(machine, { backend: cfg.backend, numa_groups: cfg.nodes > 1, mutants: cfg.mutant ? [cfg.mutant] : [] });
  const violations: Violation[] = [];
  const ring: ActorEvent[] = [];
  const log: ActorEvent[] = [];
  let history: string[] = [];
  let requests = 0;
  const locks = new LockChecker({ pc, strict: cfg.strict });
  const tracker = new IsolationTracker(pc, cfg.seed);
  let seenLock = 0;
  let seenIso = 0;
  let core: Scheduler | null = null;

  const stop = (): boolean => !cfg.count && violations.length > 0;
  const add = (v: Violation): void => {
    if (violations.length === 0) history = ring.map(formatEvent);
    if (violations.length < 50) violations.push(v);
  };

  const onEvent = (e: ActorEvent): void => {
    ring.push(e);
    if (ring.length > 40) ring.shift();
    if (hooks.keepLog) log.push(e);
    locks.observe(e);
    tracker.observe(e);
    if (e.type === 'bug') add({ checker: 'kernel-bug', kind: e.bug.code, cpu: e.cpu, tick: e.tick, message: e.bug.message });
    for (; seenLock < locks.violations.length; seenLock++) {
      const v = locks.violations[seenLock]!;
      add({ checker: 'locks', kind: v.kind, cpu: v.cpu, tick: v.tick, message: v.message });
    }
    for (; seenIso < tracker.violations.length; seenIso++) {
      const v = tracker.violations[seenIso]!;
      add({ checker: 'isolation', kind: v.kind, cpu: v.cpu, tick: e.tick, message: v.message });
    }
  };

  const sched = { seed: cfg.seed, policy: (hooks.chooser ? 'choice' : cfg.policy) as Policy, maxDelay: cfg.maxDelay, onEvent, ...(hooks.chooser ? { chooser: hooks.chooser } : {}) };
  core = new Scheduler(pc, sched);
  core.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'boot' });
  mm_init(machine, pc);
  core.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'slabOnline' });
  core.admit({ kind: 'init_late', cpu: 0 }, () => {});
  core.drain();
  const c = core;
  if (cfg.failRate > 0) machine.buddy.setFaultInjection({ failRate: cfg.failRate, prng: new Prng(cfg.seed ^ 0x5eed) });

  const offsets = [...pc.__per_cpu_offset];
  const static_vars: CpuContext['static_vars'] = {};
  for (const v of pc.image.vars) static_vars[v.name] = { ptr: pc.image.per_cpu_start + v.offset, size: v.size };
  const results: StressCpuResult[] = [];
  let finished = 0;
  // the CPU programs report through `finished`, `results` and `add`; the loop below drives them
  for (let cpu = 0; cpu < cfg.cpus; cpu++) {
    const port = {
      request: (req: unknown): Promise<Reply> =>
        new Promise<Reply>((resolve) => {
          requests++;
          c.admit({ ...(req as Request), cpu }, resolve);
        }),
    };
    const ctx: CpuContext = { cpu, nr_cpus: cfg.cpus, seed: cfg.seed, per_cpu_offset: offsets, static_vars, barrier_timeout_ms: 1000, check_isolation: true, count_violations: cfg.count };
    const api = new PerCpu(ctx, port, machine.sab);
    void stressCpu(api, cfg.args, stop).then(
      (r) => {
        results[cpu] = r;
        for (const f of api.faults) {
          const v = tracker.describe(f);
          add({ checker: 'isolation', kind: v.kind, cpu, tick: c.tick, message: v.message });
        }
        finished++;
      },
      (e: Error) => {
        finished++;
        if (e instanceof StopError) return;
        if (e instanceof IsolationError) {
          const v = tracker.describe(e.fault);
          add({ checker: 'isolation', kind: v.kind, cpu, tick: c.tick, message: v.message });
        } else if (e instanceof CorruptionError) add({ checker: 'data', kind: 'corruption', cpu, tick: c.tick, message: e.message });
        else if (e instanceof PercpuError) {
          if (!violations.some((v) => v.checker === 'kernel-bug')) add({ checker: 'kernel-bug', kind: e.code, cpu, tick: c.tick, message: e.message });
        } else add({ checker: 'kernel-bug', kind: 'oops', cpu, tick: c.tick, message: `${e.name}: ${e.message}` });
      },
    );
  }

  const total = cfg.cpus * cfg.args.ops;
  let lastProgress = 0;
  let afterStop = 0;
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
  await turn();
  while (finished < cfg.cpus) {
    if (!c.idle) {
      c.step();
      if (c.lockOwners().pcpu_lock === null && !stop())
        for (const v of checkAllocator(pc)) add({ checker: 'allocator', kind: v.invariant, cpu: -1, tick: c.tick, message: `chunk ${v.chunk}: ${v.message}` });
    } else {
      const p = checkPageAccounting(pc);
      if (p) add({ checker: 'pages', kind: p.invariant, cpu: -1, tick: c.tick, message: p.message });
    }
    await turn();
    // after a violation, keep stepping a little so the other CPUs notice and stop
    if (stop() && ++afterStop > 10_000) break;
    if (hooks.onProgress && c.tick - lastProgress >= 500) {
      lastProgress = c.tick;
      hooks.onProgress(Math.min(total, requests), total);
    }
  }
  if (!stop()) {
    c.drain();
    const p = checkPageAccounting(pc);
    if (p) add({ checker: 'pages', kind: p.invariant, cpu: -1, tick: c.tick, message: p.message });
    for (const v of checkAllocator(pc)) add({ checker: 'allocator', kind: v.invariant, cpu: -1, tick: c.tick, message: `chunk ${v.chunk}: ${v.message}` });
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
export function stressCommand(cfg: StressConfig): string {
  const a = cfg.args;
  const parts = [
    'percpu-sim stress',
    `--seed ${cfg.seed}`,
    `--cpus ${cfg.cpus}`,
    `--nodes ${cfg.nodes}`,
    `--backend ${cfg.backend}`,
    `--memory ${cfg.memoryMiB}`,
    `--policy ${cfg.policy}`,
    `--max-delay ${cfg.maxDelay}`,
    `--fail-rate ${cfg.failRate}`,
    `--ops ${a.ops}`,
    `--alloc-pct ${a.allocPct}`,
    `--reserved-pct ${a.reservedPct}`,
    `--sizes ${a.sizes}`,
    `--max-align-shift ${a.maxAlignShift}`,
    `--max-live ${a.maxLive}`,
  ];
  if (cfg.mutant) parts.push(`--mutant ${cfg.mutant}`);
  if (cfg.strict) parts.push('--strict');
  if (cfg.count) parts.push('--count');
  return parts.join(' ');
}
