/**
 * The allocator actor as the rest of the machine sees it: requests in, promises of replies
 * out, lifecycle calls in the kernel's order, and every event the scheduler records.
 *
 * Ticks are driven from the event loop (one batch per setImmediate turn), so messages from
 * CPU workers arrive between ticks: while an allocation sleeps in populate, a free from
 * another CPU gets in, as it would on the real machine.
 */
import { createActor, type Actor } from 'xstate';
import { KernelBug } from '../kernel/bug.ts';
import type { Percpu } from '../kernel/percpu.ts';
import { type PercpuSetup, setup_per_cpu_areas } from '../kernel/setup.ts';
import type { Machine } from '../mem/machine.ts';
import { allocatorMachine } from './machine.ts';
import type { Scheduler, SchedulerOptions } from '../sim/scheduler.ts';
import type { ActorEvent, Reply, Request } from '../sim/events.ts';

export interface AllocatorActorOptions extends SchedulerOptions {
  /** scheduler ticks per event-loop turn; 1 gives the finest interleaving with CPU messages */
  stepsPerTurn?: number;
  /** keep every event in `events` (needed to replay the run) */
  record?: boolean;
}

export interface ShutdownReport {
  /** allocations still live when the workloads ended, freed by shutdown */
  leaks: { ptr: number; cpu: number; size: number; chunk: number; off: number; tick: number }[];
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
  readonly actor: Actor<typeof allocatorMachine>;
  readonly events: ActorEvent[] = [];
  private readonly listeners: ((e: ActorEvent) => void)[] = [];
  private turnQueued = false;
  private idleWaiters: (() => void)[] = [];
  private readonly stepsPerTurn: number;

  constructor(
    readonly machine: Machine,
    private readonly opts: AllocatorActorOptions,
  ) {
    this.stepsPerTurn = opts.stepsPerTurn ?? 1;
    const onEvent = (e: ActorEvent): void => {
      if (this.opts.record) this.events.push(e);
      for (const l of this.listeners) l(e);
    };
    this.actor = createActor(allocatorMachine, { input: { machine, sched: { ...opts, onEvent } } });
    this.actor.start();
  }

  get state(): string {
    return String(this.actor.getSnapshot().value);
  }

  get pc(): Percpu {
    const pc = this.actor.getSnapshot().context.pc;
    if (!pc) throw new KernelBug('BAD_STATE', 'percpu: the allocator is not set up yet');
    return pc;
  }

  get core(): Scheduler {
    const c = this.actor.getSnapshot().context.core;
    if (!c) throw new KernelBug('BAD_STATE', 'percpu: the allocator is not set up yet');
    return c;
  }

  /** Observes every scheduler event (checkers, reports). Returns an unsubscribe function. */
  onEvent(fn: (e: ActorEvent) => void): () => void {
    this.listeners.push(fn);
    return () => this.listeners.splice(this.listeners.indexOf(fn), 1);
  }

  /** setup_per_cpu_areas() on the boot CPU. Throws KernelBug for a bad configuration. */
  boot(setup: PercpuSetup): Percpu {
    if (this.state !== 'off')
      throw new KernelBug('BAD_STATE', `percpu: setup_per_cpu_areas called in state ${this.state}`);
    const pc = setup_per_cpu_areas(this.machine, setup);
    this.actor.send({ type: 'BOOT', pc });
    return pc;
  }

  /** mm_init(): the page allocator and slab come online. */
  slabOnline(): void {
    if (this.state !== 'early') throw new KernelBug('BAD_STATE', `percpu: slab online in state ${this.state}`);
    this.actor.send({ type: 'SLAB_ONLINE' });
  }

  /** percpu_init_late(), as a task under pcpu_lock; the actor moves to running when it ends. */
  async initLate(): Promise<Reply> {
    const r = await this.request({ kind: 'init_late', cpu: 0 });
    if (r.ok) this.actor.send({ type: 'LATE_DONE' });
    return r;
  }

  /** Sends a request; the promise settles with the reply (a refusal is a reply too). */
  request(req: Request): Promise<Reply> {
    return new Promise<Reply>((resolve) => {
      this.actor.send({ type: 'REQUEST', req, reply: resolve });
      // run a turn now rather than on the next event-loop turn: a request that never
      // sleeps is answered at once; sleeping ones still yield to the event loop
      if (!this.turnQueued) this.turn();
    });
  }

  /** Resolves when no task is pending; rejects after `timeoutMs`. */
  whenIdle(timeoutMs = 30_000): Promise<void> {
    const ctx = this.actor.getSnapshot().context;
    if (!ctx.core || ctx.core.idle) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`allocator actor: still busy after ${timeoutMs} ms (${ctx.core!.pending} tasks pending)`)),
        timeoutMs,
      );
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private kick(): void {
    if (this.turnQueued) return;
    this.turnQueued = true;
    setImmediate(() => this.turn());
  }

  private turn(): void {
    this.turnQueued = false;
    const core = this.actor.getSnapshot().context.core;
    if (!core) return;
    if (!core.idle) this.actor.send({ type: 'TICK', steps: this.stepsPerTurn });
    if (!core.idle) this.kick();
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
    const leaks = [...this.core.live].map(([ptr, a]) => ({ ptr, ...a }));
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
