/**
 * Every checker of a run, built once from the booted allocator and fed from one place: the
 * event log, the kernel's shared-object accesses, and the driver's calls at the points where
 * a whole-state check is meaningful (pcpu_lock free; the allocator idle; the run's end).
 * Findings of every checker come out as one list of Violations, in the order first seen.
 *
 * The checkers only observe. The lock model comes first, since the lock and race checkers
 * ask it who holds what, and it compares itself with the scheduler's own books.
 */
import { type PcpuChunk, RESERVED_CHUNK_ID } from '../kernel/chunk.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { ActorEvent } from '../sim/events.ts';
import type { KernelAccess } from '../kernel/kcsan.ts';
import { checkAllocator, checkPageAccounting } from './allocator.ts';
import { AreaOracle } from './areas.ts';
import { CoverageRecorder } from './coverage.ts';
import { type AccessFault, IsolationTracker, type IsolationViolation } from './isolation.ts';
import { LifecycleChecker } from './lifecycle.ts';
import { LockChecker, type LockViolation } from './locks.ts';
import { LockModel, type SchedulerBooks } from './lock-model.ts';
import { RaceDetector } from './races.ts';
import { ReferenceChecker, type ReferenceOptions } from './reference.ts';
import type { CheckerName, Violation } from './violation.ts';

export interface CheckerOptions {
  /** the run's seed, named in isolation reports */
  seed: number;
  /** units are grouped by NUMA node (sparse groups), for the unit-layout check */
  groupsByNode: boolean;
  /** report a wake-up under pcpu_lock as a violation, not as the known 2.6.36 dependency */
  strict: boolean;
  /** the data-race detector (lockset and happens-before) */
  races: boolean;
  /** also check that every live area is populated in every unit after each step */
  populated: boolean;
  /** keep going after the first violation (count them) instead of stopping */
  count: boolean;
  /** most violations kept */
  limit: number;
  /** hold the run against the 2.6.36 reference model, booted from this first chunk; null for off */
  reference: ReferenceOptions['boot'] | null;
}

/** A checker's finding list and how much of it has been taken into the run's list. */
interface Source {
  checker: CheckerName;
  list: readonly { kind: string; cpu: number; tick?: number; message: string; task?: number }[];
  seen: number;
}

export class CheckerSet {
  readonly model: LockModel;
  readonly locks: LockChecker;
  readonly races: RaceDetector | null;
  readonly isolation: IsolationTracker;
  readonly areas: AreaOracle;
  readonly lifecycle = new LifecycleChecker();
  /** what the run tried (coverage.ts): it finds nothing, it counts */
  readonly coverage = new CoverageRecorder();
  readonly reference: ReferenceChecker | null;
  readonly violations: Violation[] = [];
  private readonly sources: Source[];
  /** told once, when the first violation is found (the driver keeps the events before it) */
  onFirst: (() => void) | null = null;

  constructor(
    private readonly pc: Percpu,
    books: SchedulerBooks,
    private readonly opts: CheckerOptions,
  ) {
    this.model = new LockModel(books);
    this.locks = new LockChecker({ pc, strict: opts.strict });
    this.races = opts.races ? new RaceDetector(this.model) : null;
    this.isolation = new IsolationTracker(pc, opts.seed, { groupsByNode: opts.groupsByNode });
    const reserved = pc.pcpu_reserved_chunk
      ? ([pc.pcpu_static_size, pc.pcpu_reserved_chunk_limit] as [number, number])
      : null;
    this.areas = new AreaOracle({
      offsets: this.isolation.offsets,
      walk: this.isolation.walk,
      dynamic: [
        reserved ? reserved[1] : pc.pcpu_static_size,
        pc.pcpu_static_size + pc.pcpu_reserved_size + pc.pcpu_dyn_size,
      ],
      reserved,
    });
    this.reference = opts.reference
      ? new ReferenceChecker({
          boot: opts.reference,
          bootLines: pc.dmesg,
          sab: pc.machine.sab,
          walk: this.isolation.walk,
          offsets: this.isolation.offsets,
          chunk: (id) => {
            const c = id === RESERVED_CHUNK_ID ? pc.pcpu_reserved_chunk : pc.chunks.get(id);
            return c ? { map: c.map, used: c.map_used, contigHint: c.contig_hint, freeSize: c.free_size } : undefined;
          },
        })
      : null;
    this.sources = [
      { checker: 'scheduler', list: this.model.faults, seen: 0 },
      { checker: 'races', list: this.races?.violations ?? [], seen: 0 },
      { checker: 'locks', list: this.locks.violations, seen: 0 },
      { checker: 'isolation', list: this.isolation.violations, seen: 0 },
      { checker: 'areas', list: this.areas.violations, seen: 0 },
      { checker: 'lifecycle', list: this.lifecycle.violations, seen: 0 },
      { checker: 'reference', list: this.reference?.violations ?? [], seen: 0 },
    ];
    this.collect(0);
  }

  /** The run should stop: something was found and the user did not ask to count. */
  get stopped(): boolean {
    return !this.opts.count && this.violations.length > 0;
  }

  /** Wake-ups under pcpu_lock seen (the known 2.6.36 dependency, unless strict). */
  get knownLockIssues(): readonly LockViolation[] {
    return this.locks.known;
  }

  add(v: Violation): void {
    if (this.violations.length === 0) this.onFirst?.();
    if (this.violations.length < this.opts.limit) this.violations.push(v);
  }

  /** Takes what the checkers found since the last call, stamped with `tick` where they did not stamp it. */
  collect(tick: number): void {
    for (const s of this.sources)
      for (; s.seen < s.list.length; s.seen++) {
        this.add(unified(s.checker, s.list[s.seen]!, tick));
      }
  }

  /** One event of the log, to every checker (a tracepoint only to the one that reads them). */
  observe(e: ActorEvent): void {
    if (e.type === 'kernel') {
      this.reference?.observe(e);
      this.collect(e.tick);
      return;
    }
    this.model.observe(e);
    this.coverage.observe(e);
    this.races?.observe(e);
    this.locks.observe(e);
    this.isolation.observe(e);
    this.areas.observe(e);
    this.lifecycle.observe(e);
    this.reference?.observe(e);
    if (e.type === 'bug')
      this.add({ checker: 'kernel-bug', kind: e.bug.code, cpu: e.cpu, tick: e.tick, message: e.bug.message });
    this.collect(e.tick);
  }

  /** A kernel path's access to a shared object (the race detector's input). */
  access(a: KernelAccess): void {
    this.coverage.access(a);
    if (!this.races) return;
    this.races.access(a);
    this.collect(a.tick);
  }

  /** A chunk destroyed by a kernel path: every object of it ends there. */
  destroyed(task: number, cpu: number, chunk: PcpuChunk, where: string, tick: number): void {
    if (!this.races) return;
    this.races.destroyed(task, cpu, chunk, where);
    this.collect(tick);
  }

  /** The allocator's invariants, at a point where pcpu_lock is free. */
  afterStep(tick: number): void {
    if (!this.stopped) this.invariants(tick);
  }

  private invariants(tick: number): void {
    for (const v of checkAllocator(this.pc, { populated: this.opts.populated }))
      this.add({ checker: 'allocator', kind: v.invariant, cpu: -1, tick, message: `chunk ${v.chunk}: ${v.message}` });
  }

  /** With no task pending: page accounting, and every live area populated and on the maps. */
  whenIdle(tick: number): void {
    if (this.stopped) return;
    const p = checkPageAccounting(this.pc);
    if (p) this.add({ checker: 'pages', kind: p.invariant, cpu: -1, tick, message: p.message });
    this.areas.checkPopulated(tick);
    this.areas.checkMaps(chunksOf(this.pc), tick);
    this.collect(tick);
  }

  /** At the end of a run whose CPUs freed what they allocated: every whole-state check, then leaks. */
  atEnd(tick: number, opts: { leaks: boolean }): void {
    if (this.stopped) return;
    const p = checkPageAccounting(this.pc);
    if (p) this.add({ checker: 'pages', kind: p.invariant, cpu: -1, tick, message: p.message });
    this.invariants(tick);
    this.areas.checkPopulated(tick);
    this.areas.checkMaps(chunksOf(this.pc), tick);
    if (opts.leaks && this.areas.liveCount)
      this.add({
        checker: 'areas',
        kind: 'leak',
        cpu: -1,
        tick,
        message: `leak: ${this.areas.liveCount} area(s) still live after every CPU freed what it allocated`,
      });
    this.collect(tick);
  }

  /** An isolation fault a CPU raised, described from the checker's own books. */
  fault(f: AccessFault, cpu: number, tick: number): IsolationViolation {
    const v = this.isolation.describe(f);
    this.add({ ...unified('isolation', v, tick), cpu, tick });
    return v;
  }
}

/** A checker's own finding in the one shape: what it adds beyond the common fields goes to `data`. */
function unified(
  checker: CheckerName,
  f: { kind: string; cpu: number; tick?: number; message: string; task?: number },
  tick: number,
): Violation {
  const { kind, cpu, tick: at, message, task, checker: _own, ...rest } = f as typeof f & { checker?: string };
  return {
    checker,
    kind,
    cpu,
    tick: at ?? tick,
    message,
    ...(task !== undefined ? { task } : {}),
    ...(Object.keys(rest).length ? { data: rest } : {}),
  };
}

/** Every chunk the allocator has, the reserved one included. */
function chunksOf(pc: Percpu): PcpuChunk[] {
  return [...pc.chunks.values(), ...(pc.pcpu_reserved_chunk ? [pc.pcpu_reserved_chunk] : [])];
}
