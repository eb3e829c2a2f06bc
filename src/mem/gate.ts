/**
 * The thread side of a controlled run: every CPU thread parks at each scheduling point
 * (Atomics.wait on its own slot of a small control buffer) until the controller on the main
 * thread lets it go, so that one thread runs at a time and the controller picks which.
 *
 * A point is reported after the operation it names: the thread did the operation, then parks,
 * and the controller reads what it did (the kind, the address, the values) from the slot
 * before it chooses who runs next. Every wait is bounded; an aborted run wakes every thread.
 */

/** Words of the control buffer before the slots. */
const G_ABORT = 0;
const HEAD = 16;
/** Int32 words per CPU slot. */
export const SLOT = 16;
/** Float64 words per CPU slot (addresses above 2^31). */
const FSLOT = 2;

// slot words
export const S_STATE = 0;
export const S_GO = 1;
export const S_KIND = 2;
/** requests sent so far */
export const S_SENT = 3;
/** the barrier generation a blocked CPU waits to see change */
export const S_WAIT = 4;
export const S_A = 5;
export const S_B = 6;
export const S_C = 7;

// states
/** released by the controller, running */
export const ST_RUNNING = 0;
/** parked at a point, waiting to be let go */
export const ST_PARKED = 1;
/** a request is on its way to the actor; the thread is in its event loop */
export const ST_AWAIT_REPLY = 2;
/** the phase has ended on this CPU */
export const ST_DONE = 3;
/** parked at a barrier until its generation changes */
export const ST_BLOCKED = 4;
/** the phase has been handed to the thread, which has not parked yet */
export const ST_STARTING = 5;

// point kinds
export const P_START = 1;
export const P_REQUEST = 2;
export const P_REPLY = 3;
export const P_RELAX = 4;
export const P_BARRIER = 5;
/** a page-table generation read: A = the value */
export const P_GEN = 6;
/** a page-table entry read: va, A = the pfn (-1 none) */
export const P_PTE = 7;
/** a TLB fill: va of the page, A = pfn, B = the generation it is tagged with */
export const P_FILL = 8;
/** a data access: va, A = length, B = flags (F_*), C = the frame used (pfn, -1 direct map) */
export const P_ACCESS = 9;
/** a u64_stats reader section begins: va of the sequence count */
export const P_SEQ_BEGIN = 10;
/** it ends: A = 1 when the reader retries */
export const P_SEQ_END = 11;

export const F_WRITE = 1;
export const F_ATOMIC = 2;
/** the first 32-bit half of a split 64-bit access */
export const F_HALF1 = 4;
/** the second half */
export const F_HALF2 = 8;

export const POINT_NAMES: Record<number, string> = {
  [P_START]: 'start',
  [P_REQUEST]: 'request sent',
  [P_REPLY]: 'reply taken',
  [P_RELAX]: 'cpu_relax',
  [P_BARRIER]: 'barrier',
  [P_GEN]: 'generation read',
  [P_PTE]: 'page-table read',
  [P_FILL]: 'TLB fill',
  [P_ACCESS]: 'access',
  [P_SEQ_BEGIN]: 'u64_stats_fetch_begin',
  [P_SEQ_END]: 'u64_stats_fetch_retry',
};

/** The control buffer for a machine of `cpus` CPUs. */
export function controlBuffer(cpus: number): SharedArrayBuffer {
  return new SharedArrayBuffer((HEAD + cpus * SLOT) * 4 + cpus * FSLOT * 8);
}

/** Views of the control buffer, for both sides. */
export class ControlView {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  constructor(
    readonly sab: SharedArrayBuffer,
    readonly cpus: number,
  ) {
    this.i32 = new Int32Array(sab, 0, HEAD + cpus * SLOT);
    this.f64 = new Float64Array(sab, (HEAD + cpus * SLOT) * 4, cpus * FSLOT);
  }
  word(cpu: number, w: number): number {
    return HEAD + cpu * SLOT + w;
  }
  get(cpu: number, w: number): number {
    return Atomics.load(this.i32, this.word(cpu, w));
  }
  va(cpu: number): number {
    return this.f64[cpu * FSLOT]!;
  }
  setVa(cpu: number, va: number): void {
    this.f64[cpu * FSLOT] = va;
  }
  get aborted(): boolean {
    return Atomics.load(this.i32, G_ABORT) !== 0;
  }
  /** Stops the run: every parked thread wakes and throws. */
  abort(): void {
    Atomics.store(this.i32, G_ABORT, 1);
    for (let c = 0; c < this.cpus; c++) {
      Atomics.add(this.i32, this.word(c, S_GO), 1);
      Atomics.notify(this.i32, this.word(c, S_GO));
    }
  }
}

/** Thrown on a CPU thread when the controller stopped the run or never let it go. */
export class GateError extends Error {
  override readonly name = 'GateError';
  readonly code = 'ABORTED';
}

export class Gate {
  private readonly v: ControlView;
  private readonly state: number;
  private readonly go: number;
  /** a request sent and not yet answered */
  private inFlight = false;

  constructor(
    sab: SharedArrayBuffer,
    nrCpus: number,
    readonly cpu: number,
    /** the longest a thread waits to be let go, in ms */
    private readonly timeoutMs: number,
  ) {
    this.v = new ControlView(sab, nrCpus);
    this.state = this.v.word(cpu, S_STATE);
    this.go = this.v.word(cpu, S_GO);
  }

  /** Reports an operation done and parks until the controller lets this CPU go. */
  point(kind: number, va = 0, a = 0, b = 0, c = 0): void {
    const i32 = this.v.i32;
    const base = this.state;
    i32[base + S_KIND] = kind;
    i32[base + S_A] = a;
    i32[base + S_B] = b;
    i32[base + S_C] = c;
    this.v.setVa(this.cpu, va);
    this.park(ST_PARKED);
  }

  /** Parks at a barrier until the barrier's generation is no longer `gen`. */
  block(gen: number): void {
    this.v.i32[this.state + S_KIND] = P_BARRIER;
    this.v.i32[this.state + S_WAIT] = gen;
    this.park(ST_BLOCKED);
  }

  /** The request has been posted: the thread goes back to its event loop for the reply. */
  sent(): void {
    if (this.inFlight)
      throw new GateError(
        `cpu ${this.cpu}: a controlled run takes one request in flight per CPU (await each request before the next)`,
      );
    this.inFlight = true;
    Atomics.add(this.v.i32, this.state + S_SENT, 1);
    Atomics.store(this.v.i32, this.state, ST_AWAIT_REPLY);
    Atomics.notify(this.v.i32, this.state);
  }

  /** The reply is here: a scheduling point before the CPU goes on. */
  replied(): void {
    this.inFlight = false;
    this.point(P_REPLY);
  }

  /** The phase has ended on this CPU (also after a failure). */
  done(): void {
    Atomics.store(this.v.i32, this.state, ST_DONE);
    Atomics.notify(this.v.i32, this.state);
  }

  private park(state: number): void {
    const i32 = this.v.i32;
    if (this.v.aborted) throw new GateError(`cpu ${this.cpu}: the controlled run was stopped`);
    const go = Atomics.load(i32, this.go);
    Atomics.store(i32, this.state, state);
    Atomics.notify(i32, this.state);
    const deadline = Date.now() + this.timeoutMs;
    while (Atomics.load(i32, this.go) === go) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new GateError(`cpu ${this.cpu}: the controller did not let this CPU go within ${this.timeoutMs} ms`);
      Atomics.wait(i32, this.go, go, Math.min(left, 1000));
    }
    if (this.v.aborted) throw new GateError(`cpu ${this.cpu}: the controlled run was stopped`);
  }
}
