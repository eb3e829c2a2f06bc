/**
 * Controlled concurrency on worker threads (as Fray does for JVM threads, Coyote for .NET
 * tasks): every CPU is still its own worker thread running the workload's ordinary code, but
 * it parks at each scheduling point (src/mem/gate.ts), and this controller, on the main
 * thread, lets one go at a time. The allocator actor is one more thing to run: its run queue
 * advances one turn when the controller picks it, through the clock it was given, never on the
 * event loop's own account. So a run is a function of its seed and policy, and the schedule it
 * took (the controller's choices, -1 for the actor) replays it exactly.
 *
 * The main thread never blocks: it waits for a thread to park with Atomics.waitAsync, and a
 * CPU waiting for its reply is in its event loop, not parked, so the controller knows which
 * replies are on their way and waits for each to be taken before it chooses again. Every wait
 * is bounded.
 */
import type { Clock } from '../actor/clock.ts';
import type { CpuContext } from '../api/per-cpu.ts';
import type { MmProtocolChecker } from '../check/mm-protocol.ts';
import type { DataPathBug } from '../mem/controlled-access.ts';
import {
  ControlView,
  F_HALF1,
  F_HALF2,
  F_WRITE,
  P_ACCESS,
  P_FILL,
  P_GEN,
  P_PTE,
  P_RELAX,
  P_SEQ_BEGIN,
  P_SEQ_END,
  POINT_NAMES,
  S_A,
  S_B,
  S_C,
  S_KIND,
  S_SENT,
  S_STATE,
  S_WAIT,
  ST_AWAIT_REPLY,
  ST_BLOCKED,
  ST_DONE,
  ST_PARKED,
  ST_RUNNING,
  ST_STARTING,
  controlBuffer,
  S_GO,
} from '../mem/gate.ts';
import { H_BARRIER_GEN, H_PT_GEN } from '../mem/layout.ts';
import { Prng } from '../util/prng.ts';

export type ControlPolicy = 'random' | 'pct';

export interface ControlOptions {
  policy: ControlPolicy;
  /** the policy's seed (the run's seed by default) */
  seed?: number;
  /** the machine's word: 32 splits plain 64-bit accesses in two */
  word?: 32 | 64;
  /** the choices to make instead of the policy's: a recorded run's schedule */
  schedule?: readonly number[];
  /** data-path bugs to build into the CPU threads (tests of the checkers) */
  bugs?: readonly DataPathBug[];
  /** the longest any one wait lasts, in ms */
  timeoutMs?: number;
  /** PCT's priority change points */
  depth?: number;
  /**
   * How often a CPU let go from inside a TLB fill (after a generation read or a table walk)
   * first sees an unrelated flush (0 never; default AIM_FLUSH)
   */
  aimFlush?: number;
}

/**
 * The odds of an aimed flush. In a kernel other vmalloc users unmap and flush the TLB at any
 * time; here the controller aims such flushes into the one window a fill protocol can get
 * wrong, so that a fill tagged with a generation other than its walk's shows on every run.
 */
export const AIM_FLUSH = 0.1;

/** The entity that runs the allocator actor in a schedule. */
export const ACTOR = -1;
/** A schedule entry that is no thread: an unrelated TLB flush (the page-table generation bumped) */
export const FLUSH = -2;

/**
 * The actor's clock in a controlled run: while a phase is controlled, a deferred turn waits
 * for the controller; otherwise it runs on the event loop, where only the main thread acts.
 */
export class GatedClock implements Clock {
  gated = false;
  private due: (() => void)[] = [];

  defer(fn: () => void): void {
    if (this.gated) this.due.push(fn);
    else setImmediate(() => (this.gated ? this.due.push(fn) : fn()));
  }

  after(ms: number, fn: () => void): unknown {
    return setTimeout(fn, ms);
  }

  cancel(handle: unknown): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }

  get pending(): boolean {
    return this.due.length > 0;
  }

  /** One turn of the actor: the turns deferred so far. */
  advance(): void {
    const due = this.due;
    this.due = [];
    for (const fn of due) fn();
  }

  /** Back to the event loop, with whatever is still due. */
  release(): void {
    this.gated = false;
    const due = this.due;
    this.due = [];
    for (const fn of due) setImmediate(fn);
  }
}

/** A controlled run that cannot go on: a thread that never parked, a deadlock, a replay that parted. */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    message: string,
    readonly cpu = -1,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

export class Controller {
  readonly clock = new GatedClock();
  readonly view: ControlView;
  /** every choice made, in order: a CPU, or ACTOR */
  readonly schedule: number[] = [];
  readonly word: 32 | 64;
  /** scheduling points the CPUs reported */
  points = 0;
  private readonly prng: Prng;
  private readonly timeoutMs: number;
  /** requests that reached the main thread, and replies made, per CPU */
  private readonly received: number[];
  private readonly replied: number[];
  /** a CPU let go and not yet seen parked again */
  private readonly running: boolean[];
  private poke: (() => void) | null = null;
  /** the machine's watchdog: a CPU that waits its turn is not stuck */
  private beat: Int32Array | null = null;
  private header: Int32Array | null = null;
  private checker: MmProtocolChecker | null = null;
  /** PCT: priorities, higher runs first; the actor's is at index cpus */
  private readonly priority: number[];
  private readonly changeAt: Set<number>;
  /** the aimed flushes' own stream, so the policy's choices stay those of its seed */
  private readonly flushPrng: Prng;

  constructor(
    readonly cpus: number,
    readonly o: ControlOptions & { seed: number },
  ) {
    this.view = new ControlView(controlBuffer(cpus), cpus);
    this.word = o.word ?? 64;
    this.prng = new Prng((o.seed ^ 0xc0_17_01) >>> 0);
    this.timeoutMs = o.timeoutMs ?? 30_000;
    this.received = new Array<number>(cpus).fill(0);
    this.replied = new Array<number>(cpus).fill(0);
    this.running = new Array<boolean>(cpus).fill(false);
    // PCT (Burckhardt et al.): random distinct priorities, lowered at d - 1 random steps
    const order = Array.from({ length: cpus + 1 }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.prng.int(0, i);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    this.priority = order.map((p) => p + 1000);
    this.changeAt = new Set(Array.from({ length: Math.max(0, (o.depth ?? 3) - 1) }, () => this.prng.int(0, 20_000)));
    this.flushPrng = new Prng((o.seed ^ 0xf1_05_4e) >>> 0);
  }

  /** Watches the data path with the memory-management checker, and barriers through the machine's header. */
  attach(sab: SharedArrayBuffer, checker: MmProtocolChecker | null): void {
    this.header = new Int32Array(sab, 0, 1024);
    this.checker = checker;
  }

  /** What a CPU's task carries to its thread (`ctx` is what it carries already). */
  context(cpu: number, ctx: CpuContext): Partial<CpuContext> {
    if (ctx.heartbeat) this.beat = new Int32Array(ctx.heartbeat);
    Atomics.store(this.view.i32, this.view.word(cpu, S_STATE), ST_STARTING);
    this.running[cpu] = true;
    return {
      control: {
        sab: this.view.sab,
        timeout_ms: this.timeoutMs * 2,
        word: this.word,
        ...(this.o.bugs?.length ? { bugs: [...this.o.bugs] } : {}),
      },
    };
  }

  /** A CPU's requests, counted as they reach the actor and as their replies leave. */
  request<Q, R>(cpu: number, send: (req: Q) => Promise<R>): (req: Q) => Promise<R> {
    return async (req) => {
      this.received[cpu]!++;
      this.poke?.();
      const r = await send(req);
      this.replied[cpu]!++;
      return r;
    };
  }

  /**
   * Runs a phase of the CPUs `cpus` under control until each has ended, or `tasks` settles
   * (a thread that died): the caller sees that failure from the tasks themselves.
   */
  async run(cpus: readonly number[], tasks: Promise<unknown>): Promise<void> {
    let ended = false;
    tasks.then(
      () => (ended = true),
      () => (ended = true),
    );
    this.clock.gated = true;
    try {
      for (;;) {
        for (const c of cpus) {
          if (!(await this.settle(c, () => ended))) return;
        }
        const enabled: number[] = [];
        for (const c of cpus) {
          const st = this.state(c);
          if (st === ST_PARKED) enabled.push(c);
          else if (st === ST_BLOCKED && Atomics.load(this.header!, H_BARRIER_GEN) !== this.view.get(c, S_WAIT))
            enabled.push(c);
        }
        if (this.clock.pending) enabled.push(ACTOR);
        if (!enabled.length) {
          if (cpus.every((c) => this.state(c) === ST_DONE)) return;
          throw new ControlError(
            `controlled run: no CPU can go on and the allocator has nothing to do (${cpus.map((c) => `cpu ${c} ${this.describe(c)}`).join(', ')})`,
          );
        }
        const choice = this.choose(enabled);
        if (choice === FLUSH) {
          // a recorded flush: made, then the next choice as recorded
          this.schedule.push(FLUSH);
          this.flush();
          continue;
        }
        if (choice !== ACTOR && this.aimed(choice)) {
          this.schedule.push(FLUSH);
          this.flush();
        }
        this.schedule.push(choice);
        if (this.beat && (this.schedule.length & 1023) === 0) for (const c of cpus) Atomics.add(this.beat, c, 1);
        if (choice === ACTOR) {
          this.clock.advance();
          // the replies it made go out before anything else is chosen
          await new Promise((r) => setImmediate(r));
        } else this.release(choice);
      }
    } catch (e) {
      this.view.abort();
      throw e;
    } finally {
      this.clock.release();
    }
  }

  /**
   * Whether CPU `cpu`, about to be let go, first sees an unrelated flush: only when it is
   * parked inside a fill's window (it read the generation or walked the table, and may fill
   * next), the page table is watched and maps something, and the flushes' own odds say so.
   * Never on a replay, whose flushes are in its schedule.
   */
  private aimed(cpu: number): boolean {
    // nothing of ours in the page table (the km backend): no fill there to get wrong
    if (this.o.schedule || !this.checker?.mapsAny || !this.header) return false;
    const kind = this.view.get(cpu, S_KIND);
    if (this.state(cpu) !== ST_PARKED || (kind !== P_GEN && kind !== P_PTE)) return false;
    return this.flushPrng.float() < (this.o.aimFlush ?? AIM_FLUSH);
  }

  /**
   * Another vmalloc user's vunmap flushing the TLB: the generation bumped with no entry of
   * ours changed, told to the checker as such (it is no bump of our page table's).
   */
  private flush(): void {
    if (!this.header) throw new ControlError('controlled run: a recorded flush, but no machine is attached');
    const g = Atomics.add(this.header, H_PT_GEN, 1) + 1;
    this.checker?.foreignFlush(g);
  }

  /** Stops every thread of the run (after a failure elsewhere). */
  abort(): void {
    this.view.abort();
  }

  private state(cpu: number): number {
    return this.view.get(cpu, S_STATE);
  }

  private describe(cpu: number): string {
    const st = this.state(cpu);
    const names = ['running', 'parked', 'waiting for a reply', 'done', 'at a barrier', 'starting'];
    const kind = POINT_NAMES[this.view.get(cpu, S_KIND)];
    return `${names[st] ?? st}${st === ST_PARKED && kind ? ` (${kind})` : ''}`;
  }

  private choose(enabled: number[]): number {
    const step = this.schedule.length;
    if (this.o.schedule) {
      const want = this.o.schedule[step];
      if (want === FLUSH) return FLUSH;
      if (want === undefined || !enabled.includes(want))
        throw new ControlError(
          `replay parted from the recorded schedule at choice ${step}: recorded ${want === undefined ? 'the end' : want === ACTOR ? 'the allocator' : `cpu ${want}`}, but only ${enabled.map((e) => (e === ACTOR ? 'the allocator' : `cpu ${e}`)).join(', ')} could run`,
        );
      return want;
    }
    if (this.o.policy === 'random') return enabled[this.prng.int(0, enabled.length - 1)]!;
    const prio = (e: number): number => this.priority[e === ACTOR ? this.cpus : e]!;
    let best = enabled[0]!;
    for (const e of enabled) if (prio(e) > prio(best)) best = e;
    if (this.changeAt.has(step)) this.lower(best);
    return best;
  }

  /** PCT: `e` goes below everything else. */
  private lower(e: number): void {
    const i = e === ACTOR ? this.cpus : e;
    this.priority[i] = Math.min(...this.priority) - 1;
  }

  private release(cpu: number): void {
    const i32 = this.view.i32;
    this.running[cpu] = true;
    Atomics.store(i32, this.view.word(cpu, S_STATE), ST_RUNNING);
    Atomics.add(i32, this.view.word(cpu, S_GO), 1);
    Atomics.notify(i32, this.view.word(cpu, S_GO));
  }

  /**
   * Waits until CPU `cpu` stands still: parked, blocked, done, or waiting for a reply that
   * the actor has not made yet (its request arrived). Returns false when the phase's tasks
   * ended first.
   */
  private async settle(cpu: number, ended: () => boolean): Promise<boolean> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const st = this.state(cpu);
      if (st === ST_PARKED || st === ST_BLOCKED || st === ST_DONE) {
        if (this.running[cpu]) {
          this.running[cpu] = false;
          if (st !== ST_DONE) this.observe(cpu);
        }
        return true;
      }
      if (st === ST_AWAIT_REPLY) {
        const sent = this.view.get(cpu, S_SENT);
        if (this.received[cpu] === sent && this.replied[cpu]! < sent) return true;
      }
      if (ended()) return false;
      if (Date.now() > deadline)
        throw new ControlError(
          `controlled run: cpu ${cpu} did not reach its next scheduling point within ${this.timeoutMs} ms (${this.describe(cpu)}; the thread crashed or waits outside the controller)`,
          cpu,
          true,
        );
      const w = Atomics.waitAsync(this.view.i32, this.view.word(cpu, S_STATE), st, 50);
      if (w.async) {
        const poked = new Promise<void>((r) => (this.poke = r));
        await Promise.race([w.value, poked]);
        this.poke = null;
      } else await new Promise((r) => setImmediate(r));
    }
  }

  /** What a parked CPU did last, to the data-path checker (and PCT's yield rule). */
  private observe(cpu: number): void {
    this.points++;
    const v = this.view;
    const kind = v.get(cpu, S_KIND);
    if (kind === P_RELAX && this.o.policy === 'pct' && !this.o.schedule) this.lower(cpu);
    const mm = this.checker;
    if (!mm) return;
    const a = v.get(cpu, S_A);
    switch (kind) {
      case P_GEN:
        mm.genRead(cpu, a);
        break;
      case P_PTE:
        mm.walked(cpu);
        break;
      case P_FILL:
        mm.filled(cpu, v.va(cpu), a, v.get(cpu, S_B));
        break;
      case P_ACCESS: {
        const f = v.get(cpu, S_B);
        const half = f & F_HALF1 ? 1 : f & F_HALF2 ? 2 : 0;
        mm.access(cpu, v.va(cpu), a, (f & F_WRITE) !== 0, half, v.get(cpu, S_C));
        break;
      }
      case P_SEQ_BEGIN:
        mm.sectionBegin(cpu);
        break;
      case P_SEQ_END:
        mm.sectionEnd(cpu, a !== 0);
        break;
    }
  }
}
