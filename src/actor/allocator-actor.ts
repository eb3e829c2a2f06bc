/**
 * The allocator actor as the rest of the machine sees it: the one front door to the
 * allocator. Requests go in and promises of replies come out; lifecycle steps come in the
 * kernel's order; every event the run queue records goes to the listeners.
 *
 * Admission and the lifecycle go through the XState machine (src/actor/machine.ts). The run
 * queue's ticks are driven by an injected clock: on worker-thread runs the event loop, one
 * batch per turn, so messages from CPU threads arrive between ticks (while an allocation
 * sleeps in populate, a free from another CPU gets in, as on the real machine); on
 * deterministic runs the driver advances a ManualClock and checks between steps.
 */
import { createActor, type Actor } from 'xstate';
import { KernelBug } from '../kernel/bug.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { Machine } from '../mem/machine.ts';
import type { LifecycleState, LifecycleStep } from '../sim/lifecycle.ts';
import type { Scheduler } from '../sim/scheduler.ts';
import type { Reply, Request } from '../sim/events.ts';
import type { Clock } from './clock.ts';
import { allocatorMachine, LIFECYCLE, type LifecycleRules } from './machine.ts';

export interface AllocatorActorOptions {
  machine: Machine;
  runQueue: Scheduler;
  clock: Clock;
  /** run-queue ticks per turn; 1 gives the finest interleaving with CPU messages */
  stepsPerTurn?: number;
  /** run a turn as soon as a request is admitted (worker-thread runs), not on the next one */
  eager?: boolean;
  /** the lifecycle's rules (tests hand in a buggy one) */
  rules?: LifecycleRules;
}

export interface Leak {
  ptr: number;
  cpu: number;
  size: number;
  chunk: number;
  off: number;
  tick: number;
}

/** One leak, in a line: where the area is and who allocated it when. */
export function leakLine(l: Leak): string {
  return `unreferenced percpu area 0x${l.ptr.toString(16)} (${l.size} bytes at chunk ${l.chunk === -1 ? 'reserved' : l.chunk} offset ${l.off}), allocated by cpu ${l.cpu} at tick ${l.tick}`;
}

export interface ShutdownReport {
  /** allocations still live when the workloads ended, freed by shutdown */
  leaks: Leak[];
  /** chunks shutdown destroyed */
  destroyedChunks: number;
  postBootFreePages: number;
  finalFreePages: number;
  postBootMetaBytes: number;
  finalMetaBytes: number;
  /** page accounting returned exactly to its state after late init */
  pagesRestored: boolean;
}

export class AllocatorActor {
  readonly actor: Actor<ReturnType<typeof allocatorMachine>>;
  readonly machine: Machine;
  readonly runQueue: Scheduler;
  private readonly clock: Clock;
  private readonly stepsPerTurn: number;
  private readonly eager: boolean;
  private turnQueued = false;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: AllocatorActorOptions) {
    this.machine = opts.machine;
    this.runQueue = opts.runQueue;
    this.clock = opts.clock;
    this.stepsPerTurn = opts.stepsPerTurn ?? 1;
    this.eager = opts.eager ?? false;
    this.actor = createActor(allocatorMachine(opts.rules ?? LIFECYCLE), {
      input: { machine: opts.machine, runQueue: opts.runQueue },
    });
    this.actor.start();
  }

  get state(): LifecycleState {
    return this.actor.getSnapshot().value as LifecycleState;
  }

  get pc(): Percpu {
    return this.runQueue.pc;
  }

  /** A lifecycle step; a step the state does not allow is a BUG of the caller. */
  private step(s: LifecycleStep, what: string): void {
    const before = this.state;
    this.actor.send({ type: s });
    if (this.state === before) throw new KernelBug('BAD_STATE', `percpu: ${what} in state ${before}`);
  }

  /** setup_per_cpu_areas() has run on the boot CPU: the allocator takes early requests. */
  boot(): void {
    this.step('BOOT', 'setup_per_cpu_areas called');
  }

  /** mm_init(): the page allocator and slab come online. */
  slabOnline(): void {
    this.step('SLAB_ONLINE', 'slab online');
  }

  /** percpu_init_late(), as a task under pcpu_lock; the actor moves to running when it ends. */
  initLate(): Promise<Reply> {
    return this.request({ kind: 'init_late', cpu: 0 });
  }

  /** Sends a request; the promise settles with the reply (a refusal is a reply too). */
  request(req: Request): Promise<Reply> {
    return new Promise<Reply>((resolve) => this.send(req, resolve));
  }

  /** Sends a request whose reply goes to a callback (no promise: deterministic drivers). */
  send(req: Request, reply: (r: Reply) => void): void {
    this.actor.send({ type: 'REQUEST', req, reply });
    // a request that never sleeps is answered at once; sleeping ones still yield
    if (this.eager && !this.turnQueued) this.turn();
    else this.kick();
  }

  /** Runs the run queue until nothing is pending (boot-time and end-of-run work). */
  drain(): void {
    this.runQueue.drain();
  }

  /** Resolves when no task is pending; rejects after `timeoutMs`. */
  whenIdle(timeoutMs = 30_000): Promise<void> {
    if (this.runQueue.idle) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.clock.after(timeoutMs, () =>
        reject(new Error(`allocator actor: still busy after ${timeoutMs} ms (${this.runQueue.pending} tasks pending)`)),
      );
      this.idleWaiters.push(() => {
        this.clock.cancel(timer);
        resolve();
      });
    });
  }

  /** Makes sure a turn is coming while tasks are pending (a task the run queue admitted itself). */
  wake(): void {
    if (!this.runQueue.idle) this.kick();
  }

  private kick(): void {
    if (this.turnQueued) return;
    this.turnQueued = true;
    this.clock.defer(() => this.turn());
  }

  private turn(): void {
    this.turnQueued = false;
    const q = this.runQueue;
    for (let i = 0; i < this.stepsPerTurn && !q.idle; i++) q.step();
    if (!q.idle) this.kick();
    else {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /**
   * Shutdown: refuse new work, free what workloads left behind (reporting each as a leak),
   * destroy the empty chunks, and compare page accounting with the post-boot state.
   */
  async shutdown(timeoutMs = 30_000): Promise<ShutdownReport> {
    if (this.state !== 'running') throw new KernelBug('BAD_STATE', `percpu: shutdown in state ${this.state}`);
    await this.whenIdle(timeoutMs);
    const ctx = this.actor.getSnapshot().context;
    this.actor.send({ type: 'SHUTDOWN' });
    const leaks = [...this.runQueue.live].map(([ptr, a]) => ({ ptr, ...a }));
    for (const l of leaks) await this.request({ kind: 'free', cpu: l.cpu, ptr: l.ptr, internal: true });
    const td = await this.request({ kind: 'teardown', cpu: 0, internal: true });
    await this.whenIdle(timeoutMs);
    this.actor.send({ type: 'SHUTDOWN' });
    const finalFree = this.machine.buddy.totalFree();
    return {
      leaks,
      destroyedChunks: 'freed' in td ? td.freed : 0,
      postBootFreePages: ctx.postBootFree,
      finalFreePages: finalFree,
      postBootMetaBytes: ctx.postBootMeta,
      finalMetaBytes: this.pc.meta_bytes,
      pagesRestored: finalFree === ctx.postBootFree,
    };
  }
}
