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
 * task runs, how long a sleep lasts and what priority a task starts with are the policy's
 * choice (policy.ts); what a request runs is the subclass's (scheduler.ts).
 *
 * The run queue is also where the race detector learns who is running: it tells the
 * allocator's environment (task-env.ts) which task runs, and the environment stamps each
 * shared-object access and lockdep miss with that task.
 */
import { KernelBug } from '../kernel/bug.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { KStep, KTask, LockName } from '../kernel/steps.ts';
import { type ActorEvent, type ActorEventBody, KWORKER, type Reply, type Request } from './events.ts';
import { type AccessMode, type SharedKind, sharedObjectKey } from '../kernel/kcsan.ts';
import type { PcpuChunk } from '../kernel/chunk.ts';
import type { Footprint, Policy, Runnable } from './policy.ts';
import type { TaskEnv } from './task-env.ts';

/** Where a running task may be preempted (see the file comment). */
export type Granularity = 'sleep' | 'lock' | 'access';
export const GRANULARITIES: readonly Granularity[] = ['sleep', 'lock', 'access'];

export interface RunQueueOptions {
  policy: Policy;
  /** receives every event from the first one on */
  onEvent?: (e: ActorEvent) => void;
  /** where tasks may be preempted (default 'sleep') */
  granularity?: Granularity;
  /**
   * the environment the allocator was built with (task-env.ts), which the run queue tells who
   * runs; without one, nothing checks lockdep or watches accesses
   */
  env?: TaskEnv;
}

type TaskState = 'ready' | 'blocked' | 'sleeping' | 'done';

interface Task extends Runnable {
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
  readySince: number;
  /** what its last step used, kept only for a policy that weighs conflicts */
  last: Footprint | null;
  reply: (r: Reply) => void;
}

interface LockState {
  owner: Task | null;
  waiters: Task[];
}

export abstract class RunQueue {
  readonly policy: Policy;
  tick = 0;
  private seq = 0;
  private nextTask = 1;
  private readonly tasks = new Map<number, Task>();
  private readonly locks: Record<LockName, LockState> = {
    pcpu_alloc_mutex: { owner: null, waiters: [] },
    pcpu_lock: { owner: null, waiters: [] },
  };
  /** pcpu_reclaim_work is queued and has not started: schedule_work() queues nothing more */
  private reclaimQueued = false;
  /** the task whose kernel path is executing right now */
  private current: Task | null = null;
  private readonly listeners: ((e: ActorEvent) => void)[] = [];
  readonly granularity: Granularity;
  /** what the running step has used so far, while the policy asks for footprints */
  private footprint: Footprint | null = null;

  constructor(
    readonly pc: Percpu,
    opts: RunQueueOptions,
  ) {
    this.policy = opts.policy;
    this.granularity = opts.granularity ?? 'sleep';
    if (opts.onEvent) this.listeners.push(opts.onEvent);
    // the allocator's environment learns from here who runs; a lockdep miss is recorded
    const env = opts.env;
    if (env && env !== pc.env) throw new Error('run queue: the allocator was built with another environment');
    if ((env?.watchpoints ?? false) !== (this.granularity === 'access'))
      throw new Error(
        `run queue: granularity ${this.granularity} needs an allocator whose paths ${this.granularity === 'access' ? '' : 'do not '}yield watchpoints (TaskEnv watchpoints)`,
      );
    env?.attach({
      running: () => this.current,
      tick: () => this.tick,
      lockdepMiss: (t, lock, where) => this.emit({ type: 'lockdep', task: t.id, cpu: t.cpu, lock, where }),
      traced: (t, trace) => this.emit({ type: 'kernel', task: t.id, cpu: t.cpu, trace }),
      accessed: (kind, chunk, index, mode) => this.accessed(kind, chunk, index, mode),
    });
  }

  /** A shared-object access of the running task, into its step's footprint when one is kept. */
  private accessed(kind: SharedKind, chunk: PcpuChunk | null, index: number, mode: AccessMode): void {
    const f = this.footprint;
    if (!f) return;
    const o = sharedObjectKey(kind, chunk, index);
    if (mode !== 'read') f.objects.set(o, true);
    else if (!f.objects.has(o)) f.objects.set(o, false);
  }

  /** The kernel path a request runs. */
  protected abstract path(req: Request): KTask<Reply>;

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
    const who = (t: Task | null): string => (t ? taskName(t, t.req.kind) : 'nobody');
    return [...this.tasks.values()]
      .map((t) => {
        const lock = (Object.keys(this.locks) as LockName[]).find((l) => this.locks[l].waiters.includes(t));
        return `${who(t)} holds [${t.held.join(', ')}] and waits for ${lock ?? '?'}, held by ${lock ? who(this.locks[lock].owner) : '?'}`;
      })
      .join('; ');
  }

  /** The locks a task holds in the run queue's own books (empty for a finished task). */
  heldBy(task: number): readonly LockName[] {
    return this.tasks.get(task)?.held ?? [];
  }

  /** Whether `lock` is free right now (cheaper than lockOwners() on a hot path). */
  isFree(lock: LockName): boolean {
    return this.locks[lock].owner === null;
  }

  /** The pending tasks in a few words each, for a report: "task 7 (cpu 1, alloc size=65536)". */
  describePending(): string {
    return [...this.tasks.values()]
      .map((t) => taskName(t, `${t.req.kind === 'alloc' ? `alloc size=${t.req.size}` : t.req.kind}, ${t.state}`))
      .join(', ');
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
      gen: req.kind === 'reclaim' ? this.reclaim(req) : this.path(req),
      state: 'ready',
      wakeAt: 0,
      held: [],
      pending: null,
      last: null,
      priority: this.policy.priority(),
      readySince: this.tick,
      reply,
    };
    this.tasks.set(id, task);
    this.emit({ type: 'arrive', task: id, cpu: req.cpu, req });
    return id;
  }

  /** A reclaim that starts takes pcpu_reclaim_work off the queue, as a workqueue does before it calls a work. */
  private *reclaim(req: Request): KTask<Reply> {
    this.reclaimQueued = false;
    return yield* this.path(req);
  }

  /**
   * One tick: wake due sleepers, then run one ready task until it blocks, sleeps or ends.
   * Returns false when there was nothing to run this tick.
   */
  step(): boolean {
    this.tick++;
    this.policy.startTick?.(this.tick, this.ready());
    for (const t of this.tasks.values())
      if (t.state === 'sleeping' && t.wakeAt <= this.tick) {
        t.state = 'ready';
        t.readySince = this.tick;
        this.emit({ type: 'wake', task: t.id, cpu: t.cpu });
      }
    const task = this.pick();
    if (!task) return false;
    const stepped = this.policy.stepped;
    if (!stepped) {
      this.run(task);
      return true;
    }
    const f: Footprint = (this.footprint = { locks: new Set(), objects: new Map() });
    this.run(task);
    this.footprint = null;
    task.last = f;
    stepped.call(this.policy, task, f, this.ready());
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

  /** The ready tasks, in admission order. */
  private ready(): Task[] {
    const ready: Task[] = [];
    for (const t of this.tasks.values()) if (t.state === 'ready') ready.push(t);
    return ready;
  }

  private pick(): Task | null {
    const ready = this.ready();
    return ready.length ? ready[this.policy.pick(ready)]! : null;
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
          this.footprint?.locks.add(step.lock);
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
          this.footprint?.locks.add(step.lock);
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
          task.wakeAt = this.tick + this.policy.sleep();
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

/** "task 7 (cpu 1, what)", as reports name a task. */
function taskName(t: Task, what: string): string {
  return `task ${t.id} (${t.cpu < 0 ? 'kworker' : `cpu ${t.cpu}`}, ${what})`;
}
