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
import type { LifecycleRules } from '../actor/machine.ts';
import type { CheckerName, Violation } from '../check/violation.ts';
import type { CoverageTable } from '../check/coverage.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { KernelFault } from '../kernel/mutants.ts';
import type { BackendKind } from '../kernel/setup.ts';
import { Simulation } from '../harness/simulation.ts';
import type { ActorEvent, Reply, Request } from '../sim/events.ts';
import type { KernelAccess } from '../kernel/kcsan.ts';
import { IsolationError, PerCpu, PercpuError } from '../api/per-cpu.ts';
import {
  type Area,
  CorruptionError,
  STRESS_VARS,
  StopError,
  type StressCpuResult,
  stressCpu,
  stressEarly,
} from './program.ts';
import { type StressConfig, resolveMachine } from '../files/config.ts';
import { stressCommand } from '../files/rerun.ts';
import { PAGE_SIZE, PCPU_MIN_UNIT_SIZE, SIZEOF_INT } from '../kernel/constants.ts';

export { DEFAULT_STRESS, type StressConfig, resolveMachine } from '../files/config.ts';

/** The checkers a stress run reports through (see src/check/violation.ts). */
export type Checker = CheckerName;
export type { Violation };

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
  /** the run was a round on worker threads (rerun it with --workers) */
  workers?: true;
  /** the command that reruns this run exactly */
  rerun: string;
  /** what the run tried (src/check/coverage.ts); none for a round on worker threads */
  coverage?: CoverageTable;
}

export interface EngineHooks {
  /** scheduling choices for exploration (policy 'choice') */
  chooser?: (ready: readonly number[]) => number;
  onProgress?: (done: number, total: number) => void;
  /** keep the whole event log in the report */
  keepLog?: boolean;
  /** bugs to build the allocator with beside the configured mutant: how tests bring a bug in */
  bugs?: readonly KernelFault[];
  /** called with the booted allocator before anything runs (a timeline recorder attaches here) */
  onBoot?: (pc: Percpu) => void;
  /** every scheduler event and every shared-object access, as they happen (exploration) */
  onEvent?: (e: ActorEvent) => void;
  onAccess?: (a: KernelAccess) => void;
  /** a lifecycle with a bug in it, for tests that the checkers see it */
  rules?: LifecycleRules;
  /** a scripted scenario instead of the stress program: what the boot CPU does before slab, and what each CPU does after */
  programs?: ScenarioPrograms;
  /** abandons the run: it rejects with the signal's reason at the next step */
  signal?: AbortSignal;
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

/** Ticks without any request finishing after which a run is a livelock (a request takes tens). */
const NO_PROGRESS_TICKS = 200_000;

export async function runStress(config: StressConfig, hooks: EngineHooks = {}): Promise<StressReport> {
  const t0 = performance.now();
  const cfg: StressConfig = { ...config, ...resolveMachine(config) };
  const sim = new Simulation(
    {
      seed: cfg.seed,
      cpus: cfg.cpus,
      nodes: cfg.nodes,
      ...(cfg.cpuToNode ? { cpuToNode: cfg.cpuToNode } : {}),
      ...(cfg.distance ? { distance: cfg.distance } : {}),
      backend: cfg.backend as BackendKind,
      memoryMiB: cfg.memoryMiB,
      shadow: true,
      mutant: cfg.mutant,
      failRate: cfg.failRate,
      staticVars: STRESS_VARS,
      policy: cfg.policy,
      granularity: cfg.granularity,
      maxDelay: cfg.maxDelay,
      lockdep: cfg.lockdep,
      reference: cfg.reference,
      check: true,
      strict: cfg.strict,
      races: cfg.races,
      count: cfg.count,
      populated: false,
      drive: 'manual',
      keepLog: hooks.keepLog === true,
    },
    {
      ...(hooks.bugs ? { bugs: hooks.bugs } : {}),
      ...(hooks.onBoot ? { onBoot: hooks.onBoot } : {}),
      ...(hooks.onEvent ? { onEvent: hooks.onEvent } : {}),
      ...(hooks.onAccess ? { onAccess: hooks.onAccess } : {}),
      ...(hooks.chooser ? { chooser: hooks.chooser } : {}),
      ...(hooks.rules ? { rules: hooks.rules } : {}),
    },
  );
  const q = sim.runQueue;
  const actor = sim.actor;
  const checkers = sim.checkers!;
  let requests = 0;
  const stop = (): boolean => sim.stopped;
  const add = (v: Violation): void => sim.add(v);

  const apis: PerCpu[] = [];
  for (let cpu = 0; cpu < cfg.cpus; cpu++) {
    const port = {
      request: (req: unknown): Promise<Reply> =>
        new Promise<Reply>((resolve) => {
          requests++;
          actor.send({ ...(req as Request), cpu }, resolve);
        }),
    };
    apis.push(new PerCpu(sim.cpuContext(cpu, { barrier_timeout_ms: 120_000 }), port, sim.machine.sab));
  }

  /** What ended a CPU program, as a violation (a stop after someone else's violation is none). */
  const failed = (cpu: number, e: Error): void => {
    if (e instanceof StopError) return;
    if (e instanceof IsolationError) checkers.fault(e.fault, cpu, q.tick);
    else if (e instanceof CorruptionError)
      add({ checker: 'data', kind: 'corruption', cpu, tick: q.tick, message: e.message });
    else if (e instanceof PercpuError) {
      if (!sim.violations.some((v) => v.checker === 'kernel-bug'))
        add({ checker: 'kernel-bug', kind: e.code, cpu, tick: q.tick, message: e.message });
    } else add({ checker: 'kernel-bug', kind: 'oops', cpu, tick: q.tick, message: `${e.name}: ${e.message}` });
  };
  const counted = (api: PerCpu): void => {
    for (const f of api.faults.splice(0)) checkers.fault(f, api.cpu, q.tick);
  };
  /** A request the lifecycle must refuse in this state; the lifecycle checker sees how it went. */
  const probe = (): void => actor.send({ kind: 'init_late', cpu: 0 }, () => {});

  const total = cfg.cpus * cfg.args.ops + cfg.args.earlyOps;
  let lastProgress = 0;
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
  /** Steps the simulation, with the checks between steps, until `done()` or a violation has had time to spread. */
  const drive = async (done: () => boolean): Promise<void> => {
    let afterStop = 0;
    await turn();
    while (!done()) {
      const stuck = q.deadlock();
      if (stuck) {
        add({ checker: 'locks', kind: 'deadlock', cpu: -1, tick: q.tick, message: `deadlock: ${stuck}` });
        return;
      }
      if (!sim.step()) sim.checkIdle();
      else if (q.tick - sim.progressTick > NO_PROGRESS_TICKS) {
        add({
          checker: 'liveness',
          kind: 'no-progress',
          cpu: -1,
          tick: q.tick,
          message: `no progress: no request has finished for ${NO_PROGRESS_TICKS} ticks while ${q.pending} task(s) ran (${q.describePending()}): a livelock`,
        });
        return;
      }
      await turn();
      hooks.signal?.throwIfAborted();
      // after a violation, keep stepping a little so the other CPUs notice and stop
      if (stop() && ++afterStop > 10_000) break;
      if (hooks.onProgress && q.tick - lastProgress >= 500) {
        lastProgress = q.tick;
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
    await drive(() => over && q.idle);
  };

  // early boot: percpu_init_late() is refused before slab; the boot CPU allocates until the early map runs out
  probe();
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
  await drive(() => earlyDone && q.idle);
  counted(apis[0]!);

  const results: StressCpuResult[] = [];
  let finished = 0;
  if (!stop()) {
    actor.slabOnline();
    if (!script?.racingInitLate) {
      void actor.initLate();
      // percpu_init_late() is queued: another is refused (a refusal makes no task, so no
      // scheduling draw: the seed's run stays the same)
      probe();
      actor.drain();
    }
    if (script?.prelude) await sequential(script.prelude);
    if (script?.racingInitLate) void actor.initLate();
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
  if (!stop() && cfg.reference) {
    // a request of exactly one unit is legal (the largest there is): its placement, its new
    // chunk and its population are held against the model like any other
    const unit = Math.min(sim.pc.pcpu_unit_size, PCPU_MIN_UNIT_SIZE);
    let whole: Reply | null = null;
    actor.send({ kind: 'alloc', cpu: 0, size: unit, align: PAGE_SIZE }, (r) => (whole = r));
    await drive(() => whole !== null && q.idle);
    const got = whole as Reply | null;
    if (got && got.ok && 'ptr' in got) {
      actor.send({ kind: 'free', cpu: 0, ptr: got.ptr }, () => {});
      await drive(() => q.idle);
    }
    // a module's percpu larger than the whole reserved area: 2.6.36 fails it from the reserved
    // chunk and never serves it from a dynamic one (the run's own mix never fills that chunk)
    const reservedBytes = sim.pc.pcpu_reserved_size;
    if (reservedBytes && !stop()) {
      let big: Reply | null = null;
      const size = Math.min(reservedBytes + SIZEOF_INT, unit);
      actor.send({ kind: 'alloc', cpu: 0, size, align: 8, reserved: true }, (r) => (big = r));
      await drive(() => big !== null && q.idle);
      const r = big as Reply | null;
      if (r && r.ok && 'ptr' in r) {
        actor.send({ kind: 'free', cpu: 0, ptr: r.ptr }, () => {});
        await drive(() => q.idle);
      }
    }
  }
  if (!stop()) {
    // percpu_init_late() has run: a second one is refused
    probe();
    actor.drain();
    checkers.atEnd(q.tick, { leaks: true });
  }
  hooks.onProgress?.(total, total);
  return {
    seed: cfg.seed,
    config: cfg,
    verdict: sim.violations.length ? 'violation' : 'clean',
    violations: [...sim.violations],
    history: sim.history,
    ticks: q.tick,
    requests,
    knownLockIssues: checkers.knownLockIssues.length,
    cpus: results.filter(Boolean),
    ms: performance.now() - t0,
    log: sim.log,
    rerun: stressCommand(cfg),
    coverage: checkers.coverage.table(),
  };
}
