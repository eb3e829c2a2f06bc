/**
 * A data-race detector at the data. Every kernel path reports each access to a shared
 * object (src/kernel/kcsan.ts); the scheduler stamps it with the running task; the locks
 * that task holds come from the LockModel, which follows the scheduler's events. Nothing
 * here asks the kernel code what it thinks it holds.
 *
 * Two analyses run side by side:
 *
 *  - lockset (Eraser): each object starts Virgin, becomes Exclusive to the first task that
 *    touches it (a chunk still being built by one allocation raises nothing), Shared when a
 *    second task reads it and Shared-Modified once it is written by more than one task. From
 *    the second task on, its candidate set is the locks held at every access; an empty set in
 *    Shared-Modified is a report, whatever order this run happened to take. Page-table
 *    entries are left to the second analysis: they are handed from populate (under the mutex)
 *    to free (under pcpu_lock) by the area's own life, which no lock expresses.
 *  - happens-before: vector clocks over lanes (one per CPU, plus one per concurrent request
 *    of a CPU and for the reclaim worker), joined on lock release -> acquire, request ->
 *    reply -> the CPU's next request, allocation reply -> the free of that pointer, and
 *    schedule_work() -> the work. Two accesses, one a write, that no such chain orders are a
 *    report (FastTrack's epochs for writes, one read per lane).
 *
 * The end of a chunk (its destruction) counts as a write of everything the chunk had, then
 * forgets it. Each object is reported once.
 */
import type { ActorEvent, TaskKind } from '../sim/events.ts';
import type { PcpuChunk } from '../kernel/chunk.ts';
import { type AccessMode, type KernelAccess, type SharedKind, sharedObjectKey } from '../kernel/kcsan.ts';
import type { LockName } from '../kernel/steps.ts';
import { LOCKS, type LockModel } from './lock-model.ts';
import { VectorClock } from './vector-clock.ts';

export type RaceKind = 'lockset' | 'data-race';

/** One side of a report. */
export interface RaceAccess {
  task: number;
  cpu: number;
  where: string;
  mode: AccessMode;
  locks: LockName[];
  tick: number;
}

export interface RaceViolation {
  checker: 'races';
  kind: RaceKind;
  /** the object, as a person would name it */
  object: string;
  /** the earlier access (null when the lockset emptied with no earlier access to blame) */
  first: RaceAccess | null;
  second: RaceAccess;
  cpu: number;
  tick: number;
  message: string;
}

/** The lock an access to each kind of object must hold in 2.6.36, when there is one. */
const NEEDS: Partial<Record<SharedKind, LockName>> = {
  map: 'pcpu_lock',
  slots: 'pcpu_lock',
  populated: 'pcpu_alloc_mutex',
  vm: 'pcpu_alloc_mutex',
  scratch: 'pcpu_alloc_mutex',
};

/** The lock 2.6.36 protects each kind of object with, for the reports. */
const GUARD: Record<SharedKind, string> = {
  map: 'pcpu_lock',
  slots: 'pcpu_lock',
  index: 'pcpu_alloc_mutex to add and remove, pcpu_lock to look up',
  populated: 'pcpu_alloc_mutex',
  vm: 'pcpu_alloc_mutex',
  page: "the area's own life: populated under pcpu_alloc_mutex before it is handed out",
  scratch: 'pcpu_alloc_mutex',
};

/** Eraser's states of an object. */
const State = { Virgin: 0, Exclusive: 1, Shared: 2, SharedModified: 3 } as const;
type State = (typeof State)[keyof typeof State];

interface Access {
  lane: number;
  clock: number;
  task: number;
  cpu: number;
  where: string;
  mode: AccessMode;
  locks: number;
  tick: number;
}

interface SharedObject {
  kind: SharedKind;
  chunk: PcpuChunk | null;
  index: number;
  write: Access | null;
  /** the last read of each lane since the last write */
  reads: (Access | undefined)[];
  state: State;
  owner: number;
  cset: number;
  last: Access | null;
  reported: boolean;
}

interface Lane {
  cpu: number;
  vc: VectorClock;
  busy: boolean;
}

const lockBit = (l: LockName): number => (l === 'pcpu_alloc_mutex' ? 1 : 2);
const lockNames = (mask: number): LockName[] => LOCKS.filter((l) => mask & lockBit(l));

function chunkLabel(c: PcpuChunk): string {
  if (c.id === -1) return 'the reserved chunk';
  if (c.id === 0 && c.immutable) return 'chunk 0';
  return c.id === 0 ? 'a chunk being created' : `chunk ${c.id}`;
}

/** How a report names an object. */
export function objectName(kind: SharedKind, chunk: PcpuChunk | null, index: number): string {
  const c = chunk ? chunkLabel(chunk) : '';
  switch (kind) {
    case 'map':
      return `${c}'s area map (map, map_used, free_size, contig_hint)`;
    case 'slots':
      return 'the pcpu_slot lists';
    case 'index':
      return `${c}'s entry in the chunk index`;
    case 'populated':
      return `${c}'s populated bitmap`;
    case 'vm':
      return `${c}'s vm areas / page block`;
    case 'page':
      return `page ${index} of ${c} (its page-table entries and page -> chunk links)`;
    case 'scratch':
      return "percpu-vm's scratch page array";
  }
}

export interface RaceDetectorOptions {
  lockset?: boolean;
  happensBefore?: boolean;
}

export class RaceDetector {
  readonly violations: RaceViolation[] = [];
  private readonly lockset: boolean;
  private readonly hb: boolean;
  private readonly objects = new Map<string, SharedObject>();
  /** chunk uid -> the keys of its objects, so that its destruction can end them */
  private readonly byChunk = new Map<number, Set<string>>();
  private readonly lanes: Lane[] = [];
  private readonly taskLane = new Map<number, number>();
  private readonly taskKind = new Map<number, TaskKind>();
  private readonly lockClock: Record<LockName, VectorClock> = {
    pcpu_alloc_mutex: new VectorClock(),
    pcpu_lock: new VectorClock(),
  };
  /** what each CPU has seen in replies so far */
  private readonly replyClock = new Map<number, VectorClock>();
  /** the clock of each live allocation's reply, by pointer: a free of it comes after */
  private readonly ptrClock = new Map<number, VectorClock>();
  /** joined at every schedule_work(), taken by the next reclaim that starts (null: no work pending) */
  private workClock: VectorClock | null = null;

  constructor(
    private readonly model: LockModel,
    opts: RaceDetectorOptions = {},
  ) {
    this.lockset = opts.lockset !== false;
    this.hb = opts.happensBefore !== false;
  }

  // ------------------------------------------------------------ clocks

  private laneOf(task: number, cpu: number): number {
    let l = this.taskLane.get(task);
    if (l !== undefined) return l;
    // a CPU's requests run on its lane one after another; a second one in flight gets another
    l = this.lanes.findIndex((x) => x.cpu === cpu && !x.busy);
    if (l < 0) {
      l = this.lanes.length;
      this.lanes.push({ cpu, vc: new VectorClock(), busy: false });
    }
    const lane = this.lanes[l]!;
    lane.busy = true;
    lane.vc.increment(l);
    const seen = this.replyClock.get(cpu);
    if (seen) lane.vc.join(seen);
    this.taskLane.set(task, l);
    return l;
  }

  private vcOf(task: number, cpu: number): VectorClock {
    return this.lanes[this.laneOf(task, cpu)]!.vc;
  }

  /** A release: what the task did so far is published, and it moves to a new epoch. */
  private release(vc: VectorClock, lane: number): VectorClock {
    const copy = vc.clone();
    vc.increment(lane);
    return copy;
  }

  /** Follows one scheduler event (after the LockModel has seen it). */
  observe(e: ActorEvent): void {
    if (e.task < 0) return;
    switch (e.type) {
      case 'arrive': {
        this.taskKind.set(e.task, e.req.kind);
        const vc = this.vcOf(e.task, e.cpu);
        const ptrs = e.req.kind === 'free' ? [e.req.ptr] : e.req.kind === 'free_batch' ? e.req.ptrs : [];
        for (const p of ptrs) {
          const c = this.ptrClock.get(p);
          if (c) vc.join(c);
        }
        break;
      }
      case 'run':
        if (this.taskKind.get(e.task) === 'reclaim' && this.workClock) {
          this.vcOf(e.task, e.cpu).join(this.workClock);
          this.workClock = null;
        }
        break;
      case 'lock':
        this.vcOf(e.task, e.cpu).join(this.lockClock[e.lock]);
        break;
      case 'unlock': {
        const l = this.laneOf(e.task, e.cpu);
        this.lockClock[e.lock] = this.release(this.lanes[l]!.vc, l);
        break;
      }
      case 'schedule_work': {
        const l = this.laneOf(e.task, e.cpu);
        (this.workClock ??= new VectorClock()).join(this.release(this.lanes[l]!.vc, l));
        break;
      }
      case 'done':
      case 'bug': {
        const l = this.laneOf(e.task, e.cpu);
        const lane = this.lanes[l]!;
        const published = this.release(lane.vc, l);
        let seen = this.replyClock.get(e.cpu);
        if (!seen) this.replyClock.set(e.cpu, (seen = new VectorClock()));
        seen.join(published);
        if (e.type === 'done') {
          const r = e.reply;
          if ('ptr' in r && r.ok) this.ptrClock.set(r.ptr, published);
          else if ('batch' in r) for (const b of r.batch) if (b.ok) this.ptrClock.set(b.ptr, published);
        }
        lane.busy = false;
        this.taskLane.delete(e.task);
        this.taskKind.delete(e.task);
        break;
      }
      default:
        break;
    }
  }

  // ------------------------------------------------------------ accesses

  private object(kind: SharedKind, chunk: PcpuChunk | null, index: number): SharedObject {
    const key = sharedObjectKey(kind, chunk, index);
    let o = this.objects.get(key);
    if (!o) {
      o = {
        kind,
        chunk,
        index,
        write: null,
        reads: [],
        state: State.Virgin,
        owner: -1,
        cset: 0,
        last: null,
        reported: false,
      };
      this.objects.set(key, o);
      if (chunk) {
        let keys = this.byChunk.get(chunk.uid);
        if (!keys) this.byChunk.set(chunk.uid, (keys = new Set()));
        keys.add(key);
      }
    }
    return o;
  }

  /** One access of a kernel path, stamped by the scheduler. */
  access(a: KernelAccess): void {
    const o = this.object(a.kind, a.chunk, a.index);
    const lane = this.laneOf(a.task, a.cpu);
    const vc = this.lanes[lane]!.vc;
    let locks = 0;
    for (const l of this.model.holds(a.task)) locks |= lockBit(l);
    const cur: Access = {
      lane,
      clock: vc.get(lane),
      task: a.task,
      cpu: a.cpu,
      where: a.where,
      mode: a.mode,
      locks,
      tick: a.tick,
    };
    // a lockset report says more (which lock is missing), so it goes first
    if (this.lockset && a.kind !== 'page') this.eraser(o, cur);
    if (this.hb) this.happensBefore(o, cur, vc);
    o.last = cur;
  }

  /** A chunk's destruction: a write of every object it had, which then ends. */
  destroyed(task: number, cpu: number, chunk: PcpuChunk, where: string): void {
    const keys = this.byChunk.get(chunk.uid);
    if (!keys) return;
    const lane = this.laneOf(task, cpu);
    const vc = this.lanes[lane]!.vc;
    const cur: Access = { lane, clock: vc.get(lane), task, cpu, where, mode: 'free', locks: 0, tick: -1 };
    for (const k of keys) {
      const o = this.objects.get(k);
      if (o && this.hb) this.happensBefore(o, cur, vc);
      this.objects.delete(k);
    }
    this.byChunk.delete(chunk.uid);
  }

  private happensBefore(o: SharedObject, cur: Access, vc: VectorClock): void {
    const before = (p: Access): boolean => p.lane === cur.lane || p.clock <= vc.get(p.lane);
    const w = o.write;
    if (w && !before(w)) this.report(o, 'data-race', w, cur);
    if (cur.mode === 'read') {
      o.reads[cur.lane] = cur;
      return;
    }
    for (const r of o.reads) if (r && !before(r)) this.report(o, 'data-race', r, cur);
    o.write = cur;
    o.reads = [];
  }

  private eraser(o: SharedObject, cur: Access): void {
    const write = cur.mode !== 'read';
    let before = o.cset;
    switch (o.state) {
      case State.Virgin:
        o.state = State.Exclusive;
        o.owner = cur.task;
        return;
      case State.Exclusive:
        if (cur.task === o.owner) return;
        o.state = write ? State.SharedModified : State.Shared;
        o.cset = cur.locks;
        before = o.last?.locks ?? 0; // what the first task held, for the report
        break;
      case State.Shared:
        o.cset &= cur.locks;
        if (write) o.state = State.SharedModified;
        break;
      case State.SharedModified:
        o.cset &= cur.locks;
        break;
    }
    if (o.state === State.SharedModified && o.cset === 0) this.report(o, 'lockset', o.last, cur, before);
  }

  private report(o: SharedObject, kind: RaceKind, prev: Access | null, cur: Access, candidates = 0): void {
    if (o.reported) return;
    o.reported = true;
    const name = objectName(o.kind, o.chunk, o.index);
    const side = (a: Access): RaceAccess => ({
      task: a.task,
      cpu: a.cpu,
      where: a.where,
      mode: a.mode,
      locks: lockNames(a.locks),
      tick: a.tick,
    });
    const say = (a: RaceAccess): string =>
      `${a.mode} in ${a.where} by task ${a.task} (${a.cpu < 0 ? 'kworker' : `cpu ${a.cpu}`}) holding [${a.locks.join(', ')}]`;
    const second = side(cur);
    const first = prev ? side(prev) : null;
    const message =
      kind === 'data-race'
        ? `data race on ${name}: ${say(second)} and the earlier ${say(first!)} are not ordered by any lock, request or reply (happens-before); it is protected by ${GUARD[o.kind]}`
        : `no lock protects ${name} (lockset): ${say(second)}, after accesses that all held [${lockNames(candidates).join(', ')}]${first ? ` (the last: ${say(first)})` : ''}; it is protected by ${GUARD[o.kind]}`;
    // point at the side that broke the rule, when the rule is one lock
    const need = NEEDS[o.kind];
    const culprit = need ? [second, first].find((a) => a && !a.locks.includes(need)) : undefined;
    const blame = culprit ? `; ${culprit.where} (task ${culprit.task}) ran without ${need}` : '';
    this.violations.push({
      checker: 'races',
      kind,
      object: name,
      first,
      second,
      cpu: cur.cpu,
      tick: cur.tick,
      message: message + blame,
    });
  }
}
