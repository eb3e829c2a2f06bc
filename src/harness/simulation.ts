/**
 * The simulation, built in one place from one resolved configuration: the booted machine and
 * kernel, the run queue, the allocator actor in front of it, the checker set and the event
 * log. Every driver builds one and differs only in how its CPUs run: coroutines stepped by
 * the stress engine, worker threads on the event loop, a fixed schedule, a recorded log.
 *
 * Everything the configuration implies is derived once, here and in src/sim/boot.ts, from
 * the seed: the groups, the backend's rules, the fault-injection stream, the checkers'
 * ranges, the static variables. A rerun that builds the same configuration gets the same
 * simulation.
 */
import type { CpuContext } from '../api/per-cpu.ts';
import { CheckerSet } from '../check/checker-set.ts';
import { MmProtocolChecker } from '../check/mm-protocol.ts';
import type { Violation } from '../check/violation.ts';
import { AllocatorActor } from '../actor/allocator-actor.ts';
import { type Clock, eventLoopClock, ManualClock } from '../actor/clock.ts';
import type { LifecycleRules } from '../actor/machine.ts';
import type { PcpuChunk } from '../kernel/chunk.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { KernelFault, MutantName } from '../kernel/mutants.ts';
import type { Machine } from '../mem/machine.ts';
import { bootMachine, firstChunkSpec, groupsByNode, type MachineSpec, staticVarMap } from '../sim/boot.ts';
import type { ActorEvent } from '../sim/events.ts';
import { formatEventNamed } from '../sim/format-event.ts';
import type { KernelAccess } from '../kernel/kcsan.ts';
import type { PolicyName } from '../sim/policy.ts';
import type { Granularity } from '../sim/run-queue.ts';
import { Scheduler } from '../sim/scheduler.ts';
import { TaskEnv } from '../sim/task-env.ts';
import type { RunObserver } from './observer.ts';

export interface SimulationConfig extends MachineSpec {
  seed: number;
  shadow: boolean;
  mutant: MutantName | null;
  failRate: number;
  policy: PolicyName;
  granularity: Granularity;
  maxDelay: number;
  /** the shortest a sleeping step lasts, in ticks (default 1) */
  minDelay?: number;
  /** route the kernel's lockdep_assert_held() calls into the event log */
  lockdep: boolean;
  /** checkers on (allocator, locks, races, isolation, areas, lifecycle) */
  check: boolean;
  strict: boolean;
  races: boolean;
  /** count violations and go on instead of stopping at the first */
  count: boolean;
  /** hold every operation against the 2.6.36 reference model (src/model) */
  reference: boolean;
  /** the allocator check also asks that every live area is populated */
  populated: boolean;
  /** who advances the run queue: the driver step by step, or the event loop in turns */
  drive: 'manual' | 'event-loop';
  stepsPerTurn?: number;
  /** keep the whole event log (to save or replay the run) */
  keepLog: boolean;
}

export interface SimulationHooks {
  /** bugs to build the allocator with beside the configured mutant: how tests bring a bug in */
  bugs?: readonly KernelFault[];
  /** with the booted allocator, before anything runs */
  onBoot?: (pc: Percpu) => void;
  /** every event, before the checkers see it */
  onEvent?: (e: ActorEvent) => void;
  /** every shared-object access of a kernel path */
  onAccess?: (a: KernelAccess) => void;
  /** policy 'choice': the index of the task to run among the ready ones */
  chooser?: (ready: readonly number[]) => number;
  /** a lifecycle with a bug in it, for tests of the checkers */
  rules?: LifecycleRules;
  /** a whole-run observer (the timeline of --trace and --html) */
  observer?: RunObserver;
  /** the clock the actor runs on, instead of the one `drive` implies (a controlled run's) */
  clock?: Clock;
}

/** Events kept for the report of the first violation. */
const HISTORY = 40;

export class Simulation {
  readonly machine: Machine;
  readonly pc: Percpu;
  readonly runQueue: Scheduler;
  readonly actor: AllocatorActor;
  readonly checkers: CheckerSet | null;
  /** the memory-management protocol's books (with checking on) */
  readonly mm: MmProtocolChecker | null;
  readonly clock: Clock;
  /** the boot lines setup_per_cpu_areas() printed */
  readonly bootLines: readonly string[];
  readonly log: ActorEvent[] = [];
  /** the tick at which a request last finished: how a driver tells a livelock */
  progressTick = 0;
  /** the events just before the first violation, one line each */
  history: string[] = [];
  private readonly ring: ActorEvent[] = [];
  /** task id -> its name in a schedule (see src/explore/execute.ts), for the history's lines */
  private readonly taskNames = new Map<number, string>();
  private readonly arrivals = new Map<number, number>();
  /** found outside the checkers (a failed workload, a crashed thread) when checking is off */
  private readonly unchecked: Violation[] = [];

  constructor(
    readonly config: SimulationConfig,
    hooks: SimulationHooks = {},
  ) {
    let checkers: CheckerSet | null = null;
    // the kernel's environment, built before the kernel: the checkers it feeds come below,
    // before any task runs
    const watching = config.check && config.races;
    const env = new TaskEnv({
      lockdep: config.lockdep,
      tracepoints: config.check && config.reference,
      watchpoints: config.granularity === 'access',
      ...(watching || hooks.onAccess
        ? {
            onAccess: (a: KernelAccess) => {
              hooks.onAccess?.(a);
              checkers?.access(a);
            },
            onDestroy: (task: number, cpu: number, chunk: PcpuChunk, where: string) =>
              checkers?.destroyed(task, cpu, chunk, where, this.runQueue.tick),
          }
        : {}),
    });
    const { machine, pc } = bootMachine({ ...config, env, ...(hooks.bugs ? { bugs: hooks.bugs } : {}) });
    this.machine = machine;
    this.pc = pc;
    this.bootLines = [...pc.dmesg];
    hooks.onBoot?.(pc);
    hooks.observer?.attach(pc);
    const observer = hooks.observer;
    const onEvent = (e: ActorEvent): void => {
      if (e.type === 'arrive') {
        // the name a schedule gives the task: its CPU (k for the reclaim worker), then its number there
        const n = this.arrivals.get(e.cpu) ?? 0;
        this.arrivals.set(e.cpu, n + 1);
        this.taskNames.set(e.task, `${e.cpu === -1 ? 'k' : e.cpu}.${n}`);
      }
      this.ring.push(e);
      if (this.ring.length > HISTORY) this.ring.shift();
      if (config.keepLog) this.log.push(e);
      if (e.type === 'done') this.progressTick = e.tick;
      hooks.onEvent?.(e);
      if (checkers) {
        checkers.observe(e);
        // on the event loop there is no step boundary to check at: a sleep or a reply is one
        if (eventLoop && (e.type === 'sleep' || e.type === 'done') && this.runQueue.isFree('pcpu_lock'))
          checkers.afterStep(e.tick);
      } else if (e.type === 'bug')
        this.unchecked.push({
          checker: 'kernel-bug',
          kind: e.bug.code,
          cpu: e.cpu,
          tick: e.tick,
          message: e.bug.message,
        });
      observer?.observe(e);
    };
    const eventLoop = config.drive === 'event-loop';
    this.runQueue = new Scheduler(pc, {
      seed: config.seed,
      policy: hooks.chooser ? 'choice' : config.policy,
      granularity: config.granularity,
      maxDelay: config.maxDelay,
      ...(config.minDelay ? { minDelay: config.minDelay } : {}),
      env,
      onEvent,
      ...(hooks.chooser ? { chooser: hooks.chooser } : {}),
    });
    const q = this.runQueue;
    if (config.check) {
      checkers = new CheckerSet(pc, q, {
        seed: config.seed,
        groupsByNode: groupsByNode(config),
        strict: config.strict,
        races: config.races,
        populated: config.populated,
        count: config.count,
        limit: 50,
        reference: config.reference ? firstChunkSpec(config, machine.cpuToNodeMap) : null,
      });
      checkers.onFirst = () => (this.history = this.ring.map((e) => formatEventNamed(e, this.taskNames)));
    }
    this.checkers = checkers;
    this.mm = null;
    if (checkers) {
      const mm = new MmProtocolChecker(
        (v) => checkers.add({ ...v, checker: v.checker ?? 'mm', tick: this.runQueue.tick }),
        machine.vm.pt,
        machine.vm.generation,
      );
      machine.vm.observer = { pte: (vpn, o, n) => mm.pteChanged(vpn, o, n), gen: (g) => mm.genBumped(g) };
      machine.buddy.onFree = (pfn, order) => mm.framesFreed(pfn, order);
      this.mm = mm;
    }
    this.clock = hooks.clock ?? (config.drive === 'manual' ? new ManualClock() : eventLoopClock);
    this.actor = new AllocatorActor({
      machine,
      runQueue: q,
      clock: this.clock,
      eager: config.drive === 'event-loop' && !hooks.clock,
      ...(config.stepsPerTurn ? { stepsPerTurn: config.stepsPerTurn } : {}),
      ...(hooks.rules ? { rules: hooks.rules } : {}),
    });
    this.actor.boot();
  }

  get tick(): number {
    return this.runQueue.tick;
  }

  /** Everything found so far, in the order first seen. */
  get violations(): readonly Violation[] {
    return this.checkers?.violations ?? this.unchecked;
  }

  /** A violation was found and the run does not count them: the CPUs should stop. */
  get stopped(): boolean {
    return this.checkers ? this.checkers.stopped : !this.config.count && this.unchecked.length > 0;
  }

  /** A finding of the driver's own (a workload's failure, a thread that died). */
  add(v: Violation): void {
    if (this.checkers) this.checkers.add(v);
    else this.unchecked.push(v);
  }

  /** What a CPU needs to know of the machine (its own worker thread or coroutine gets this). */
  cpuContext(cpu: number, extra: Pick<CpuContext, 'barrier_timeout_ms'> & Partial<CpuContext>): CpuContext {
    return {
      cpu,
      nr_cpus: this.machine.cpus,
      seed: this.config.seed,
      per_cpu_offset: [...this.pc.__per_cpu_offset],
      static_vars: staticVarMap(this.pc),
      check_isolation: this.config.check,
      count_violations: this.config.count,
      ...extra,
    };
  }

  /**
   * One tick of a manually driven run, with the allocator's invariants checked after it
   * whenever pcpu_lock is free. Returns false when nothing was pending.
   */
  step(): boolean {
    if (this.runQueue.idle) return false;
    const clock = this.clock as ManualClock;
    if (!clock.pending) this.actor.wake();
    clock.advance();
    if (this.runQueue.isFree('pcpu_lock')) this.checkers?.afterStep(this.tick);
    return true;
  }

  /** With nothing pending: the whole-state checks. */
  checkIdle(): void {
    this.mm?.idle();
    this.checkers?.whenIdle(this.tick);
  }
}

/** A configuration with the usual defaults (a 4-CPU percpu-vm machine, every checker on, stepped by hand). */
export function simulationConfig(over: Partial<SimulationConfig> & Pick<SimulationConfig, 'seed'>): SimulationConfig {
  return {
    cpus: 4,
    nodes: 1,
    backend: 'vm',
    memoryMiB: 64,
    shadow: true,
    mutant: null,
    failRate: 0,
    policy: 'random',
    granularity: 'sleep',
    maxDelay: 4,
    lockdep: true,
    check: true,
    strict: false,
    races: true,
    count: false,
    populated: true,
    reference: true,
    drive: 'manual',
    keepLog: false,
    ...over,
  };
}
