/**
 * The allocator's run queue: every request becomes a task that runs a kernel path (a
 * generator, see src/kernel/steps.ts) and stops at each lock it must wait for and each point
 * where the kernel sleeps. Lock state is explicit: the pcpu_alloc_mutex owner and its FIFO
 * waiters, the pcpu_lock owner and its waiters.
 *
 * Time is a tick counter. step() makes one scheduling decision per tick: it wakes sleepers
 * whose time has come and runs one ready task until it blocks, sleeps, finishes or reaches a
 * preemption point of the chosen granularity:
 *
 *  - 'sleep':  only where the kernel sleeps or waits for a lock;
 *  - 'lock':   also just before every lock acquire and just after every release, so that a
 *              gap between two critical sections is interleaved even when nothing sleeps in it;
 *  - 'access': also at every watchpoint, where a path is about to touch shared objects.
 *
 * A spinlock region is atomic only because the others who want the lock must wait. Which
 * task runs and how long a sleep lasts come from one seeded PRNG, so a run is reproducible
 * from its seed and the ticks at which requests arrived (both are in the event log).
 *
 * The scheduler is also where the race detector learns who is running: it installs the
 * kernel's KCSAN hook and stamps each shared-object access with the running task.
 */
import { KernelBug } from '../kernel/bug.ts';
import { RESERVED_CHUNK_ID } from '../kernel/chunk.ts';
import type { PcpuChunk } from '../kernel/chunk.ts';
import type { AccessMode, SharedKind } from '../kernel/kcsan.ts';
import type { AllocResult, Percpu } from '../kernel/percpu.ts';
import type { KStep, KTask, LockName } from '../kernel/steps.ts';
import { Prng } from '../util/prng.ts';
import { type ActorEvent, type ActorEventBody, type AllocReply, KWORKER, type Reply, type Request } from './events.ts';

export type Policy = 'fifo' | 'random' | 'pct' | 'choice';

/** Where a running task may be preempted (see the file comment). */
export type Granularity = 'sleep' | 'lock' | 'access';
export const GRANULARITIES: readonly Granularity[] = ['sleep', 'lock', 'access'];

/** One access of a kernel path to a shared object, stamped with the task that made it. */
export interface KernelAccess {
  task: number;
  cpu: number;
  tick: number;
  kind: SharedKind;
  /** null for the global objects; the chunk struct otherwise */
  chunk: PcpuChunk | null;
  index: number;
  mode: AccessMode;
  where: string;
}

export interface SchedulerOptions {
  seed: number;
  policy?: Policy;
  /** the longest a sleeping step lasts, in ticks (at least 1) */
  maxDelay?: number;
  /** the shortest a sleeping step lasts, in ticks (default 1) */
  minDelay?: number;
  /** PCT: how many priority change points to place in a run */
  pctDepth?: number;
  /** PCT: the run length, in ticks, over which change points are spread */
  pctHorizon?: number;
  /** receives every event from the first one on */
  onEvent?: (e: ActorEvent) => void;
  /** policy 'choice': picks the index of the task to run among the ready ones (by task id) */
  chooser?: (ready: readonly number[]) => number;
  /** where tasks may be preempted (default 'sleep') */
  granularity?: Granularity;
  /** receives every access of a kernel path to a shared object (installs the KCSAN hook) */
  onAccess?: (a: KernelAccess) => void;
  /** chunk destructions, for the same watcher: every object of the chunk ends there */
  onDestroy?: (task: number, cpu: number, chunk: PcpuChunk, where: string) => void;
  /** route the kernel's lockdep_assert_held() calls into the event log (default true) */
  lockdep?: boolean;
}

type TaskState = 'ready' | 'blocked' | 'sleeping' | 'done';

interface Task {
  id: number;
  cpu: number;
  req: Request;
  gen: KTask<Reply>;
  state: TaskState;
  wakeAt: number;
  /** locks this task holds, for unwinding after a bug and for the lock checker */
  held: LockName[];
  /** a lock step it was preempted before; it is taken when the task next runs */
  pending: KStep | null;
  priority: number;
  readySince: number;
  reply: (r: Reply) => void;
}

interface LockState {
  owner: Task | null;
  waiters: Task[];
}

export class Scheduler {
  readonly prng: Prng;
  readonly policy: Policy;
  private readonly maxDelay: number;
  private readonly minDelay: number;
  private readonly chooser: ((ready: readonly number[]) => number) | null;
  tick = 0;
  private seq = 0;
  private nextTask = 1;
  private readonly tasks = new Map<number, Task>();
  private readonly locks: Record<LockName, LockState> = {
    pcpu_alloc_mutex: { owner: null, waiters: [] },
    pcpu_lock: { owner: null, waiters: [] },
  };
  private reclaimQueued = false;
  /** the task whose kernel path is executing right now */
  private current: Task | null = null;
  private readonly listeners: ((e: ActorEvent) => void)[] = [];
  private readonly changePoints: Set<number>;
  private lowPriority = 0;
  readonly granularity: Granularity;
  /** allocations that are live, by pointer: the cpu that made them and their size */
  readonly live = new Map<number, { cpu: number; size: number; chunk: number; off: number; tick: number }>();

  constructor(
    readonly pc: Percpu,
    opts: SchedulerOptions,
  ) {
    this.prng = new Prng(opts.seed);
    this.policy = opts.policy ?? 'random';
    this.maxDelay = Math.max(1, opts.maxDelay ?? 4);
    this.minDelay = Math.min(this.maxDelay, Math.max(1, opts.minDelay ?? 1));
    this.chooser = opts.chooser ?? null;
    this.changePoints = new Set();
    this.granularity = opts.granularity ?? 'sleep';
    if (opts.onEvent) this.listeners.push(opts.onEvent);
    // lockdep_assert_held(): the running task must hold the lock; a miss is recorded
    pc.lockdep_assert_held =
      opts.lockdep === false
        ? null
        : (lock, where) => {
            const t = this.current;
            if (t && !t.held.includes(lock)) this.emit({ type: 'lockdep', task: t.id, cpu: t.cpu, lock, where });
          };
    const onAccess = opts.onAccess;
    const onDestroy = opts.onDestroy;
    if (onAccess || onDestroy || this.granularity === 'access') {
      // accesses made outside any task (boot, checkers) are not the kernel racing with itself
      pc.kcsan = {
        delay: this.granularity === 'access',
        access: (kind, chunk, index, mode, where) => {
          const t = this.current;
          if (t && onAccess) onAccess({ task: t.id, cpu: t.cpu, tick: this.tick, kind, chunk, index, mode, where });
        },
        destroyed: (chunk, where) => {
          const t = this.current;
          if (t && onDestroy) onDestroy(t.id, t.cpu, chunk, where);
        },
      };
    } else pc.kcsan = null;
    if (this.policy === 'pct') {
      const horizon = opts.pctHorizon ?? 2000;
      for (let i = 0; i < (opts.pctDepth ?? 3) - 1; i++) this.changePoints.add(this.prng.int(1, horizon));
    }
  }

  onEvent(fn: (e: ActorEvent) => void): () => void {
    this.listeners.push(fn);
    return () => this.listeners.splice(this.listeners.indexOf(fn), 1);
  }

  private emit(body: ActorEventBody): void {
    const e = { ...body, seq: ++this.seq, tick: this.tick } as ActorEvent;
    for (const l of this.listeners) l(e);
  }

  /** Records an event that did not come from a task (lifecycle, refusals). */
  record(body: ActorEventBody): void {
    this.emit(body);
  }

  /** Nothing is ready, sleeping or waiting. */
  get idle(): boolean {
    return this.tasks.size === 0;
  }

  get pending(): number {
    return this.tasks.size;
  }

  /**
   * Every task left waits for a lock: nothing will ever run again. Returns who waits for
   * what and who holds it, or null when something can still run.
   */
  deadlock(): string | null {
    if (!this.tasks.size) return null;
    for (const t of this.tasks.values()) if (t.state !== 'blocked') return null;
    const who = (t: Task | null): string =>
      t ? `task ${t.id} (${t.cpu < 0 ? 'kworker' : `cpu ${t.cpu}`}, ${t.req.kind})` : 'nobody';
    return [...this.tasks.values()]
      .map((t) => {
        const lock = (Object.keys(this.locks) as LockName[]).find((l) => this.locks[l].waiters.includes(t));
        return `${who(t)} holds [${t.held.join(', ')}] and waits for ${lock ?? '?'}, held by ${lock ? who(this.locks[lock].owner) : '?'}`;
      })
      .join('; ');
  }

  /** The locks a task holds in the scheduler's own books (empty for a finished task). */
  heldBy(task: number): readonly LockName[] {
    return this.tasks.get(task)?.held ?? [];
  }

  /** Who holds each lock (task ids), for checkers and reports. */
  lockOwners(): Record<LockName, number | null> {
    return {
      pcpu_alloc_mutex: this.locks.pcpu_alloc_mutex.owner?.id ?? null,
      pcpu_lock: this.locks.pcpu_lock.owner?.id ?? null,
    };
  }

  /** Queues a request as a task. Its reply arrives through `reply` when the task finishes. */
  admit(req: Request, reply: (r: Reply) => void): number {
    const id = this.nextTask++;
    const task: Task = {
      id,
      cpu: req.cpu,
      req,
      gen: this.taskBody(req),
      state: 'ready',
      wakeAt: 0,
      held: [],
      pending: null,
      priority: this.policy === 'pct' ? this.prng.u32() + 1 : 0,
      readySince: this.tick,
      reply,
    };
    this.tasks.set(id, task);
    this.emit({ type: 'arrive', task: id, cpu: req.cpu, req });
    return id;
  }

  /** The kernel path a request runs. */
  private *taskBody(req: Request): KTask<Reply> {
    const pc = this.pc;
    switch (req.kind) {
      case 'alloc':
        return this.allocReply(req.cpu, req.size, yield* pc.pcpu_alloc(req.size, req.align, req.reserved ?? false));
      case 'alloc_batch': {
        const batch: AllocReply[] = [];
        for (const it of req.items)
          batch.push(this.allocReply(req.cpu, it.size, yield* pc.pcpu_alloc(it.size, it.align, it.reserved ?? false)));
        return { ok: true, batch };
      }
      case 'free':
        yield* pc.free_percpu(req.ptr, req.cpu);
        this.live.delete(req.ptr);
        return { ok: true, freed: 1 };
      case 'free_batch':
        for (const p of req.ptrs) {
          yield* pc.free_percpu(p, req.cpu);
          this.live.delete(p);
        }
        return { ok: true, freed: req.ptrs.length };
      case 'init_late':
        yield* pc.percpu_init_late();
        return { ok: true };
      case 'reclaim':
        this.reclaimQueued = false;
        yield* pc.pcpu_reclaim();
        return { ok: true };
      case 'teardown':
        return { ok: true, freed: (yield* pc.pcpu_teardown()).length };
    }
  }

  private allocReply(cpu: number, size: number, r: AllocResult): AllocReply {
    if (!r.ptr) return { ok: false, error: r.error ?? 'allocation failed' };
    const chunk = r.chunk!.id === RESERVED_CHUNK_ID ? -1 : r.chunk!.id;
    this.live.set(r.ptr, { cpu, size, chunk, off: r.off, tick: this.tick });
    return { ok: true, ptr: r.ptr, chunk, off: r.off, size };
  }

  /**
   * One tick: wake due sleepers, then run one ready task until it blocks, sleeps or ends.
   * Returns false when there was nothing to run this tick.
   */
  step(): boolean {
    this.tick++;
    if (this.policy === 'pct' && this.changePoints.has(this.tick)) {
      // a PCT change point: the task that would run next drops to the lowest priority
      const top = this.pick();
      if (top) top.priority = --this.lowPriority;
    }
    for (const t of this.tasks.values())
      if (t.state === 'sleeping' && t.wakeAt <= this.tick) {
        t.state = 'ready';
        t.readySince = this.tick;
        this.emit({ type: 'wake', task: t.id, cpu: t.cpu });
      }
    const task = this.pick();
    if (!task) return false;
    this.run(task);
    return true;
  }

  /** Runs until no task is ready or sleeping (blocked tasks would mean a deadlock). */
  drain(maxTicks = 1_000_000): void {
    const stop = this.tick + maxTicks;
    while (this.tasks.size && this.tick < stop) {
      const stuck = this.deadlock();
      if (stuck) throw new Error(`scheduler: deadlock: ${stuck}`);
      this.step();
    }
    if (this.tasks.size)
      throw new Error(`scheduler: ${this.tasks.size} task(s) still pending after ${maxTicks} ticks (deadlock?)`);
  }

  private pick(): Task | null {
    if (this.policy === 'choice') {
      const ready = [...this.tasks.values()].filter((t) => t.state === 'ready').sort((a, b) => a.id - b.id);
      if (!ready.length) return null;
      return ready[ready.length === 1 ? 0 : this.chooser!(ready.map((t) => t.id))] ?? ready[0]!;
    }
    let best: Task | null = null;
    let n = 0;
    for (const t of this.tasks.values()) {
      if (t.state !== 'ready') continue;
      n++;
      if (!best) best = t;
      else if (this.policy === 'fifo') {
        if (t.readySince < best.readySince || (t.readySince === best.readySince && t.id < best.id)) best = t;
      } else if (this.policy === 'pct') {
        if (t.priority > best.priority) best = t;
      } else if (this.prng.int(1, n) === 1) best = t; // reservoir sampling: uniform among ready
    }
    return best;
  }

  private delay(): number {
    return this.policy === 'fifo' || this.policy === 'choice' ? 1 : this.prng.int(this.minDelay, this.maxDelay);
  }

  /** Puts a running task back on the run queue at a preemption point. */
  private preempt(task: Task, at: string): void {
    task.state = 'ready';
    task.readySince = this.tick;
    this.emit({ type: 'preempt', task: task.id, cpu: task.cpu, at });
  }

  private run(task: Task): void {
    this.emit({ type: 'run', task: task.id, cpu: task.cpu });
    const fine = this.granularity !== 'sleep';
    for (;;) {
      let step: KStep;
      if (task.pending) {
        step = task.pending;
        task.pending = null;
      } else {
        let r: IteratorResult<KStep, Reply>;
        this.current = task;
        try {
          r = task.gen.next();
        } catch (e) {
          this.current = null;
          this.fail(task, e);
          return;
        }
        this.current = null;
        if (r.done) {
          this.finish(task, r.value);
          return;
        }
        step = r.value;
        // before an acquire: someone else may get there first
        if (fine && step.t === 'lock') {
          task.pending = step;
          this.preempt(task, `before ${step.lock}`);
          return;
        }
      }
      switch (step.t) {
        case 'lock': {
          const l = this.locks[step.lock];
          if (l.owner === task) {
            this.fail(task, new KernelBug('BUG_ON', `${step.lock} taken twice by task ${task.id} (self-deadlock)`));
            return;
          }
          if (l.owner) {
            l.waiters.push(task);
            task.state = 'blocked';
            this.emit({ type: 'block', task: task.id, cpu: task.cpu, lock: step.lock, owner: l.owner.id });
            return;
          }
          l.owner = task;
          task.held.push(step.lock);
          this.emit({ type: 'lock', task: task.id, cpu: task.cpu, lock: step.lock });
          break;
        }
        case 'unlock': {
          if (this.locks[step.lock].owner !== task) {
            this.fail(task, new KernelBug('BUG_ON', `task ${task.id} released ${step.lock}, which it does not hold`));
            return;
          }
          this.release(task, step.lock);
          if (fine) {
            this.preempt(task, `after ${step.lock}`);
            return;
          }
          break;
        }
        case 'watchpoint':
          if (this.granularity === 'access') {
            this.preempt(task, step.where);
            return;
          }
          break;
        case 'sleep':
          task.state = 'sleeping';
          task.wakeAt = this.tick + this.delay();
          this.emit({
            type: 'sleep',
            task: task.id,
            cpu: task.cpu,
            at: step.at,
            chunk: step.chunk,
            until: task.wakeAt,
          });
          return;
        case 'schedule_work':
          this.emit({ type: 'schedule_work', task: task.id, cpu: task.cpu, held: [...task.held] });
          if (!this.reclaimQueued) {
            this.reclaimQueued = true;
            this.admit({ kind: 'reclaim', cpu: KWORKER }, () => {});
          }
          break;
      }
    }
  }

  /** Drops a lock; the first waiter gets it and becomes ready. */
  private release(task: Task, lock: LockName): void {
    const l = this.locks[lock];
    task.held.splice(task.held.lastIndexOf(lock), 1);
    l.owner = null;
    this.emit({ type: 'unlock', task: task.id, cpu: task.cpu, lock });
    const next = l.waiters.shift();
    if (next) {
      l.owner = next;
      next.held.push(lock);
      next.state = 'ready';
      next.readySince = this.tick;
      this.emit({ type: 'lock', task: next.id, cpu: next.cpu, lock });
    }
  }

  private finish(task: Task, reply: Reply): void {
    if (task.held.length) {
      this.fail(
        task,
        new KernelBug('BUG_ON', `task ${task.id} (${task.req.kind}) returned holding ${task.held.join(', ')}`),
      );
      return;
    }
    task.state = 'done';
    this.tasks.delete(task.id);
    this.emit({ type: 'done', task: task.id, cpu: task.cpu, reply, kind: task.req.kind });
    task.reply(reply);
  }

  /** A kernel BUG in a task: it dies, its locks are released (as an oops would leave them to
   * the next user here), and its caller gets the bug as data. */
  private fail(task: Task, err: unknown): void {
    // anything else a kernel path throws (the machine refusing a corrupted free, a walk into
    // a list head) is an oops of that path
    const e =
      err instanceof KernelBug
        ? err
        : new KernelBug(
            'BUG_ON',
            `oops in ${task.req.kind} on cpu ${task.cpu}: ${(err as Error).message ?? String(err)}`,
            'oops',
          );
    for (const lock of [...task.held].reverse()) this.release(task, lock);
    task.state = 'done';
    this.tasks.delete(task.id);
    const bug = e.toData();
    this.emit({ type: 'bug', task: task.id, cpu: task.cpu, bug });
    task.reply({ ok: false, error: e.message, bug });
  }
}
