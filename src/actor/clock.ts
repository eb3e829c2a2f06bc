/**
 * What drives the allocator actor's turns: the event loop on worker-thread runs, or the
 * driver itself on deterministic runs (xstate's SimulatedClock pattern). The actor never
 * calls setImmediate or setTimeout itself.
 */
export interface Clock {
  /** runs `fn` on a later turn */
  defer(fn: () => void): void;
  /** runs `fn` after `ms` milliseconds of this clock's time; returns a handle for cancel() */
  after(ms: number, fn: () => void): unknown;
  cancel(handle: unknown): void;
}

/** The real event loop: a turn is a setImmediate, so messages from CPU threads get in between. */
export const eventLoopClock: Clock = {
  defer: (fn) => void setImmediate(fn),
  after: (ms, fn) => setTimeout(fn, ms),
  cancel: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * A clock the driver advances by hand: deferred turns run only in advance(), one round at a
 * time, and a millisecond is one round. A run driven by it is a function of its inputs alone.
 */
export class ManualClock implements Clock {
  private due: (() => void)[] = [];
  private timers: { at: number; fn: () => void }[] = [];
  private now = 0;

  defer(fn: () => void): void {
    this.due.push(fn);
  }

  after(ms: number, fn: () => void): unknown {
    const t = { at: this.now + ms, fn };
    this.timers.push(t);
    return t;
  }

  cancel(handle: unknown): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }

  /** Whether a turn is waiting to run. */
  get pending(): boolean {
    return this.due.length > 0;
  }

  /** Runs the turns deferred so far (not those they defer) and the timers now due. */
  advance(): void {
    this.now++;
    const due = this.due;
    this.due = [];
    for (const fn of due) fn();
    const fire = this.timers.filter((t) => t.at <= this.now);
    if (fire.length) this.timers = this.timers.filter((t) => t.at > this.now);
    for (const t of fire) t.fn();
  }
}
