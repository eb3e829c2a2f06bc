/**
 * The per-CPU API that workload code calls inside a CPU worker. Allocation and free go to
 * the allocator actor (one message each, or one per batch); every data access goes straight
 * into the shared memory through src/mem's translation. No allocator logic lives here: the
 * worker only does the kernel's pointer arithmetic, per_cpu_ptr(p, cpu) = p + offset[cpu].
 */
import type { AllocItem, AllocReply, Reply } from '../sim/events.ts';
import { FAULT_UNALIGNED, MemAccess, faultName } from '../mem/access.ts';
import { BuggedAccess, ControlledAccess, type DataPathBug, type FreeDataPathBug } from '../mem/controlled-access.ts';
import { F_WRITE, Gate, P_RELAX, P_REQUEST, P_SEQ_BEGIN, P_SEQ_END, P_START } from '../mem/gate.ts';
import {
  H_ABORT,
  H_BARRIER_COUNT,
  H_BARRIER_GEN,
  H_BARRIER_PARTIES,
  H_PT_GEN,
  H_SHADOW_EPOCH,
  PAGE_SIZE,
} from '../mem/layout.ts';
import { Prng } from '../util/prng.ts';
import { ANY_CPU, type AccessFault, AccessChecker, tagCpu } from '../check/isolation.ts';

/** What the machine tells a CPU about itself when it comes up. */
export interface CpuContext {
  cpu: number;
  nr_cpus: number;
  seed: number;
  /** __per_cpu_offset[] */
  per_cpu_offset: number[];
  /** the kernel image's static percpu variables: name -> percpu pointer and size */
  static_vars: Record<string, { ptr: number; size: number }>;
  /** the longest a barrier may wait, in ms */
  barrier_timeout_ms: number;
  /** check every access against the shadow and the page table (needs a machine with a shadow region) */
  check_isolation?: boolean;
  /** record isolation faults and go on, instead of stopping at the first */
  count_violations?: boolean;
  /**
   * Two Int32 per CPU: first nr_cpus counts the API bumps as each CPU works (the machine's
   * measure of progress), then nr_cpus flags, set while the CPU waits at a barrier (a wait
   * the barrier bounds itself)
   */
  heartbeat?: SharedArrayBuffer;
  /** a controlled run: the controller's buffer, and the machine the data path is */
  control?: CpuControl;
  /** data-path bugs built into a free-running CPU (tests of the torn-access probe) */
  bugs?: FreeDataPathBug[];
}

/** What a CPU of a controlled run needs: its gate, the longest it waits there, the machine's word. */
export interface CpuControl {
  sab: SharedArrayBuffer;
  timeout_ms: number;
  word: 32 | 64;
  /** data-path bugs to build in (tests of the checkers) */
  bugs?: DataPathBug[];
}

/** The actor's side of a CPU's channel (a comlink proxy in the worker). */
export interface ActorPort {
  request(req: unknown): Promise<Reply>;
}

/** A simulated oops: an access that did not translate. It names the CPU and the address. */
export class CpuFault extends Error {
  override readonly name = 'CpuFault';
  readonly code = 'OOPS';
  constructor(
    readonly cpu: number,
    readonly addr: number,
    /** the translation's fault code (see src/mem/access.ts) */
    readonly faultCode: number,
    op: string,
  ) {
    super(
      `BUG: unable to handle kernel paging request at ${addr.toString(16).padStart(16, '0')} (cpu ${cpu}, ${op}: ${faultName(faultCode)})`,
    );
  }
}

/** An isolation violation found by the per-write check; `fault` is the data to report. */
export class IsolationError extends Error {
  override readonly name = 'IsolationError';
  readonly code = 'ISOLATION';
  constructor(readonly fault: AccessFault) {
    super(`${fault.kind}: cpu ${fault.cpu} at ${fault.addr.toString(16).padStart(16, '0')}: ${fault.detail}`);
  }
}

/** Thrown when a request comes back as a kernel bug or a refusal the workload did not expect. */
export class PercpuError extends Error {
  override readonly name = 'PercpuError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export type Width = 1 | 2 | 4 | 8;

export interface CpuStats {
  allocs: number;
  alloc_failures: number;
  frees: number;
  reads: number;
  writes: number;
  barriers: number;
}

/** How this_cpu_words() checks a view when the machine checks isolation. */
export interface WordsOptions {
  /**
   * Every read and write through the view goes through the checker, as this_cpu_read() and
   * this_cpu_write() do (a Proxy: hundreds of times the cost of a typed-array access). Without
   * it the view is a plain Int32Array, checked when made and watched afterwards (writes only).
   */
  everyAccess?: boolean;
}

/**
 * A checked view handed out as a plain Int32Array: the copy it shows, the tag the copy had
 * when the view was made, and once the area is found freed, the words as they were then.
 */
interface WatchedView {
  va: number;
  phys: number;
  words: number;
  tag: number;
  snap: Int32Array | null;
}

/** The most checked views a CPU watches at once; past it the oldest is no longer watched. */
const MAX_VIEWS = 1024;

export class PerCpu {
  readonly cpu: number;
  readonly nr_cpus: number;
  readonly prng: Prng;
  readonly mem: MemAccess;
  private readonly counts: CpuStats = { allocs: 0, alloc_failures: 0, frees: 0, reads: 0, writes: 0, barriers: 0 };

  /** What this CPU has done so far. A this_cpu_add counts as one read and one write. */
  get stats(): CpuStats {
    return { ...this.counts, reads: this.counts.reads + this.fastOps, writes: this.counts.writes + this.fastOps };
  }
  /** the kernel's reason for the last failed allocation */
  lastError: string | null = null;
  private readonly offset: number;
  private readonly header: Int32Array;
  /**
   * A one-entry cache from percpu pointer to word index, valid for one page-table generation.
   * MemAccess has its own TLB, but going through read() and write() costs three to four times
   * as much per this_cpu_add (measured). With checking on, every use of it is checked too.
   */
  private tlbPtr = NaN;
  private tlbIdx = 0;
  private tlbGen = -1;
  /**
   * The checker's pin of this entry's check (AccessChecker.pin): the shadow epoch it passed at
   * (-1: none) and the page-table word and value it depended on (-1: the direct map)
   */
  private pinEpoch = -1;
  private pinPte = -1;
  private pinEntry = 0;
  private readonly pt: Int32Array;
  private readonly i32: Int32Array;
  /** this_cpu ops served from the cached translation (counted into stats on demand) */
  private fastOps = 0;
  private readonly checker: AccessChecker | null;
  private readonly beat: Int32Array | null;
  /** a controlled run's gate (null: the thread runs free) */
  readonly gate: Gate | null;
  private readonly cmem: ControlledAccess | null;
  /** isolation faults recorded in counting mode */
  readonly faults: AccessFault[] = [];
  /** this CPU's checked views (this_cpu_words), watched at its API calls, barriers and the phase's end */
  private views: WatchedView[] = [];
  /** the shadow epoch and page-table generation the live views were last seen at */
  private viewEpoch = -1;
  private viewGen = -1;

  constructor(
    readonly ctx: CpuContext,
    private readonly port: ActorPort,
    sab: SharedArrayBuffer,
  ) {
    this.cpu = ctx.cpu;
    this.nr_cpus = ctx.nr_cpus;
    this.prng = new Prng((ctx.seed ^ Math.imul(ctx.cpu + 1, 0x9e3779b1)) >>> 0);
    const c = ctx.control;
    this.gate = c ? new Gate(c.sab, ctx.nr_cpus, ctx.cpu, c.timeout_ms) : null;
    this.cmem = this.gate
      ? new ControlledAccess(sab, this.gate, { word: c!.word, ...(c!.bugs ? { bugs: c!.bugs } : {}) })
      : null;
    this.mem = this.cmem ?? (ctx.bugs?.length ? new BuggedAccess(sab, ctx.bugs) : new MemAccess(sab));
    this.offset = ctx.per_cpu_offset[ctx.cpu]!;
    this.header = new Int32Array(sab, 0, 1024);
    this.i32 = this.mem.i32;
    this.pt = this.mem.pt;
    this.beat = ctx.heartbeat ? new Int32Array(ctx.heartbeat) : null;
    const checker = ctx.check_isolation ? new AccessChecker(sab) : null;
    this.checker = checker?.enabled ? checker : null;
  }

  /**
   * Raises (or records, when counting) what a check found. Every checked access calls it, so
   * it is kept small enough to inline; the report itself is out of line (as are the other
   * error paths of the data path: the JIT inlines a hot access whole only within a budget).
   */
  private raise(f: AccessFault | null, va: number, op: string): void {
    if (f) this.report(f, va, op);
  }

  private report(f: AccessFault, va: number, op: string): void {
    if (this.ctx.count_violations && f.kind !== 'unmapped') this.faults.push(f);
    else if (f.kind === 'unmapped') throw new CpuFault(this.cpu, va, this.mem.translate(va), op);
    else throw new IsolationError(f);
  }

  /** Which CPU's copy an access means: its own, a named one, or (legacy `true`) any. */
  private target(remote: boolean | number): number {
    return remote === false ? this.cpu : remote === true ? ANY_CPU : this.possible(remote, 'write');
  }

  /**
   * `cpu`, when it names a possible CPU (0 .. nr_cpus-1); otherwise a clear error, where the
   * kernel would index __per_cpu_offset[] out of bounds and fault somewhere far away.
   */
  private possible(cpu: number, op: string): number {
    if (Number.isInteger(cpu) && cpu >= 0 && cpu < this.nr_cpus) return cpu;
    return this.impossible(cpu, op);
  }

  private impossible(cpu: number, op: string): never {
    throw new PercpuError(
      `${op}: cpu ${String(cpu)} is not a possible CPU (this machine has cpus 0-${this.nr_cpus - 1})`,
      'EINVAL',
    );
  }

  /** Refuses a width other than 1, 2 or 4 bytes (a number holds no 8-byte value). */
  private width(width: number, op: string): void {
    if (width !== 4 && width !== 1 && width !== 2) this.badWidth(width, op);
  }

  private badWidth(width: number, op: string): never {
    throw new PercpuError(
      `${op}: width ${String(width)} is not 1, 2 or 4 bytes (8-byte values go through this_cpu_read64, this_cpu_write64, atomic_read64 and atomic_write64)`,
      'EINVAL',
    );
  }

  /** The isolation check of one write, before it happens. */
  private checkWrite(va: number, len: number, remote: boolean | number): void {
    this.raise(this.checker!.checkWrite(this.cpu, va, len, this.target(remote)), va, 'write');
  }

  /** The isolation check of one read, before it happens. */
  private checkRead(va: number, len: number, cpu: number): void {
    this.raise(this.checker!.checkRead(this.cpu, va, len, cpu), va, 'read');
  }

  /**
   * After an access to this CPU's own copy, what the data path read or wrote must be what the
   * page table's frame holds: nobody else writes there meanwhile. Another CPU's copy may be
   * written by its owner at any moment (a racy per_cpu read is allowed), so there the check
   * is of the translation alone.
   */
  private checkBytes(va: number, data: Uint8Array, owner: number): void {
    if (owner === this.cpu) this.raise(this.checker!.checkContents(this.cpu, va, data), va, 'access');
    else this.checkPhys(va, this.mem.translate(va), data.length);
  }

  /** After a read of another CPU's copy (or any): the translation alone, since its owner may write it meanwhile. */
  private checkRemoteRead(va: number, width: Width): void {
    this.checkPhys(va, this.mem.translate(va), width);
  }

  /** After a write: it went to the frame the page table names (a negative `phys` is a fault). */
  private checkPhys(va: number, phys: number, len: number): void {
    if (phys >= 0) this.raise(this.checker!.checkPhys(this.cpu, va, phys, len), va, 'write');
  }

  // ---------------------------------------------------------------- allocation

  /** __alloc_percpu(): a percpu pointer, or 0 (NULL) with the reason in lastError. */
  async alloc_percpu(
    size: number,
    align = Math.min(8, 2 ** Math.floor(Math.log2(Math.max(1, size)))),
  ): Promise<number> {
    return this.allocReply(await this.call({ kind: 'alloc', size, align }));
  }

  /** __alloc_reserved_percpu(): from the reserved (module) chunk. */
  async alloc_reserved_percpu(size: number, align = 8): Promise<number> {
    return this.allocReply(await this.call({ kind: 'alloc', size, align, reserved: true }));
  }

  /** free_percpu(). */
  async free_percpu(ptr: number): Promise<void> {
    await this.call({ kind: 'free', ptr });
    if (ptr) this.counts.frees++;
  }

  /** Many allocations in one message; each reply is its own success or failure. */
  async alloc_batch(items: AllocItem[]): Promise<AllocReply[]> {
    const r = await this.call({ kind: 'alloc_batch', items });
    const batch = 'batch' in r ? r.batch : [];
    for (const b of batch) {
      if (b.ok) this.counts.allocs++;
      else this.counts.alloc_failures++;
    }
    return batch;
  }

  /** Many frees in one message. */
  async free_batch(ptrs: number[]): Promise<void> {
    await this.call({ kind: 'free_batch', ptrs });
    this.counts.frees += ptrs.filter((p) => p).length;
  }

  private allocReply(r: Reply): number {
    if ('ptr' in r && r.ok) {
      this.counts.allocs++;
      this.lastError = null;
      return r.ptr;
    }
    this.counts.alloc_failures++;
    this.lastError = 'error' in r ? r.error : 'allocation failed';
    return 0;
  }

  /** Every CPU's heartbeats together (0 without a heartbeat). */
  private progress(): number {
    let sum = 0;
    if (this.beat) for (let c = 0; c < this.nr_cpus; c++) sum += Atomics.load(this.beat, c);
    return sum;
  }

  /** The CPU is working: the watchdog sees it. */
  private alive(): void {
    if (this.beat) this.beat[this.cpu]!++;
  }

  private async call(req: Record<string, unknown>): Promise<Reply> {
    this.alive();
    this.watchViews();
    let r: Reply;
    if (this.gate) {
      this.gate.point(P_REQUEST);
      const p = this.port.request(req);
      this.gate.sent();
      r = await p;
      this.gate.replied();
    } else r = await this.port.request(req);
    this.alive();
    // a free of this CPU's own viewed area is seen here, before the workload can write again
    this.watchViews();
    if (!r.ok && (r.bug || r.refused)) throw new PercpuError(r.error, r.bug ? r.bug.code : 'REFUSED');
    return r;
  }

  // ---------------------------------------------------------------- pointers

  /** this_cpu_ptr(): this CPU's copy. */
  this_cpu_ptr(ptr: number): number {
    return ptr + this.offset;
  }

  /** per_cpu_ptr(): another CPU's copy (a declared remote access). */
  per_cpu_ptr(ptr: number, cpu: number): number {
    return ptr + this.ctx.per_cpu_offset[this.possible(cpu, 'per_cpu_ptr')]!;
  }

  /** per_cpu(var, cpu): the address of a static percpu variable of the kernel image. */
  per_cpu(name: string, cpu = this.cpu): number {
    const v = this.ctx.static_vars[name];
    if (!v) throw new PercpuError(`per_cpu: no static percpu variable "${name}" in the kernel image`, 'EINVAL');
    return this.per_cpu_ptr(v.ptr, cpu);
  }

  // ---------------------------------------------------------------- this_cpu ops

  /** this_cpu_read(): 1, 2 and 4 byte values as numbers (unsigned for 1 and 2). */
  this_cpu_read(ptr: number, width: 1 | 2 | 4 = 4): number {
    if (width === 4) return this.ownRead32(ptr + this.offset);
    this.width(width, 'this_cpu_read');
    return this.read(this.this_cpu_ptr(ptr), width, this.cpu);
  }

  /**
   * read(va, 4, this.cpu) on a path of its own: the JIT inlines by code size within a budget,
   * and this_cpu_read() of a word, the common case, should not carry the code of every width
   * and every owner that read() serves.
   */
  private ownRead32(va: number): number {
    const ck = this.checker;
    if (ck !== null && this.cmem !== null) return this.readChecked(ck, va, 4, this.cpu);
    const v = this.mem.read32(va);
    if (ck !== null ? !ck.readHit(va, 4, this.cpu, v) : v !== v) this.readMissed(va, 4, this.cpu, v);
    this.counts.reads++;
    return v;
  }

  /** per_cpu(x, cpu) as a value: CPU `cpu`'s copy of the area at `ptr`. */
  per_cpu_read(ptr: number, cpu: number, width: 1 | 2 | 4 = 4): number {
    this.possible(cpu, 'per_cpu_read');
    this.width(width, 'per_cpu_read');
    return this.read(this.per_cpu_ptr(ptr, cpu), width, cpu);
  }

  this_cpu_read64(ptr: number): bigint {
    const va = this.this_cpu_ptr(ptr);
    if (this.checker) this.checkRead(va, 8, this.cpu);
    const v = this.mem.read64(va);
    if (v === null) throw new CpuFault(this.cpu, va, this.mem.translate(va), 'this_cpu_read');
    if (this.checker) this.raise(this.checker.checkValue64(this.cpu, va, v), va, 'read');
    this.counts.reads++;
    return v;
  }

  this_cpu_write(ptr: number, value: number, width: 1 | 2 | 4 = 4): void {
    if (width === 4) return this.ownWrite32(ptr + this.offset, value);
    this.width(width, 'this_cpu_write');
    this.write(this.this_cpu_ptr(ptr), value, width);
  }

  /** write(va, value, 4) on a path of its own, as ownRead32(). */
  private ownWrite32(va: number, value: number): void {
    const ck = this.checker;
    const want = ck === null ? -1 : ck.hitPhys(va, 4, this.cpu);
    if (ck !== null && want < 0) this.checkWrite(va, 4, false);
    const p = this.mem.write32(va, value);
    if (p < 0) this.fault(va, p, 'write');
    if (ck !== null && (p !== want || !ck.mapped())) this.checkPhys(va, p, 4);
    this.counts.writes++;
  }

  this_cpu_write64(ptr: number, value: bigint): void {
    const va = this.this_cpu_ptr(ptr);
    const ck = this.checker;
    const want = ck === null ? -1 : ck.hitPhys(va, 8, this.cpu); // as in write()
    if (ck !== null && want < 0) this.checkWrite(va, 8, false);
    const p = this.mem.write64(va, value);
    if (p < 0) throw new CpuFault(this.cpu, va, p, 'this_cpu_write');
    if (ck !== null && (p !== want || !ck.mapped())) this.checkPhys(va, p, 8);
    this.counts.writes++;
  }

  /** this_cpu_add(): a read-modify-write of this CPU's copy; returns the new value. */
  this_cpu_add(ptr: number, delta: number, width: 1 | 2 | 4 = 4): number {
    if (width === 4 && ptr === this.tlbPtr && (this.cmem ? this.cmem.ptGen() : this.header[H_PT_GEN]) === this.tlbGen) {
      // the fast path is checked like any access (the copy, then the frame it caches); the
      // checker pins a check that passed for this entry, and while the shadow and the page
      // table word under it stand, the check is those two loads
      if (
        this.checker &&
        (this.header[H_SHADOW_EPOCH] !== this.pinEpoch || (this.pinPte >= 0 && this.pt[this.pinPte] !== this.pinEntry))
      )
        this.checkAdd(ptr);
      // the cached translation is still good: one load and one store, like %gs-relative addl
      const v = (this.i32[this.tlbIdx]! + delta) | 0;
      this.i32[this.tlbIdx] = v;
      if (this.cmem) this.cmem.noteAccess(this.this_cpu_ptr(ptr), 4, F_WRITE, this.tlbIdx * 4);
      if ((++this.fastOps & 0xffff) === 0) this.alive();
      return v;
    }
    this.width(width, 'this_cpu_add');
    const va = this.this_cpu_ptr(ptr);
    if (width === 4) this.fillTlb(ptr, va);
    const v = wrap(this.read(va, width, this.cpu) + delta, width);
    this.write(va, v, width);
    return v;
  }

  /**
   * this_cpu_words(): this CPU's copy of `words` 32-bit words at `ptr` as an Int32Array, for
   * loops that cost what typed-array code costs (`v[0] += 1` instead of this_cpu_add()).
   *
   * The view is of the frames the page table maps now: it stays right while the area is live
   * (a live area's pages are never unmapped); get a new one after freeing it. The copy must be
   * 4-byte aligned and its frames contiguous (always so within one page).
   *
   * With checking on, the view is still a plain Int32Array over the copy (its bounds are the
   * copy's), checked when it is made: the words must be one live area's copy of this CPU. No
   * JavaScript can see `v[i]` on a typed array without a Proxy, which costs hundreds of times
   * the access, so afterwards the view is watched instead: once its area is freed (by any CPU)
   * or its frames unmapped, this CPU takes a snapshot of the words at its next allocator call,
   * barrier, cpu_relax() or the end of the phase, and at each of those after, a word that
   * changed while the bytes are still the area's is reported by this CPU at that word's
   * address: as a use after free, or, when the page table maps the address to another frame
   * now, as a write through a stale translation. What it cannot see: a read through a stale view, a write that
   * races with another CPU's free (made before this CPU's next such call), and a write into
   * bytes already handed out again. `{ everyAccess: true }` gives the fully checked view,
   * where every index read and write goes through the checks of this_cpu_read() and
   * this_cpu_write(); a controlled run always gives that one, since each access is a
   * scheduling point there.
   */
  this_cpu_words(ptr: number, words: number, opts: WordsOptions = {}): Int32Array {
    const va = this.this_cpu_ptr(ptr);
    if (!Number.isInteger(words) || words < 1)
      throw new PercpuError(`this_cpu_words: ${words} words: give a whole number above zero`, 'EINVAL');
    if (va % 4 !== 0) throw new PercpuError(`this_cpu_words: 0x${va.toString(16)} is not 4-byte aligned`, 'EINVAL');
    const phys = this.mem.translate(va);
    if (phys < 0) throw new CpuFault(this.cpu, va, phys, 'this_cpu_words');
    for (let off = PAGE_SIZE - (va % PAGE_SIZE); off < words * 4; off += PAGE_SIZE)
      if (this.mem.translate(va + off) !== phys + off)
        throw new PercpuError(
          `this_cpu_words: the copy at 0x${va.toString(16)} spans frames that are not contiguous; use this_cpu_read() and this_cpu_write()`,
          'EINVAL',
        );
    const raw = this.i32.subarray(phys / 4, phys / 4 + words);
    if (!this.checker) return raw;
    if (opts.everyAccess || this.cmem) return this.everyAccessView(raw, va, phys, words);
    // checked when made: every word one live copy of this CPU's, where the page table says
    const ck = this.checker;
    this.watchViews();
    const f = ck.checkWrite(this.cpu, va, words * 4, this.cpu) ?? ck.checkPhys(this.cpu, va, phys, words * 4);
    if (f) {
      this.raise(f, va, 'this_cpu_words');
      return raw; // counting: the fault is recorded, the view is not watched
    }
    // one record per copy viewed (a loop may ask for its view again and again), and a bounded list
    if (!this.views.some((v) => v.va === va && v.words === words && v.snap === null)) {
      if (this.views.length >= MAX_VIEWS) this.views.shift();
      this.views.push({ va, phys, words, tag: ck.tagAt(phys), snap: null });
    }
    return raw;
  }

  /** The fully checked view: every index access is an access of the data path, seen by the checker. */
  private everyAccessView(raw: Int32Array, va: number, phys: number, words: number): Int32Array {
    const gen = this.header[H_PT_GEN];
    const index = (k: string | symbol): number => {
      const i = typeof k === 'string' ? Number(k) : NaN;
      return Number.isInteger(i) && i >= 0 ? i : -1;
    };
    /** The address of word i, after checking that a changed page table still maps the view's frame. */
    const addr = (i: number): number => {
      const a = va + i * 4;
      if (this.header[H_PT_GEN] !== gen)
        this.raise(this.checker!.checkPhys(this.cpu, a, phys + i * 4, 4), a, 'this_cpu_words');
      return a;
    };
    return new Proxy(raw, {
      get: (t, k) => {
        const i = index(k);
        if (i < 0) {
          if (k === 'length' || k === 'BYTES_PER_ELEMENT') return t[k];
          // a method (set, fill, subarray, an iterator) would touch memory behind the checker's back
          throw new PercpuError(
            `this_cpu_words: a checked view takes index reads and writes only (v[i], v[i] = x), not ${String(k)}`,
            'EINVAL',
          );
        }
        return i < words ? this.read(addr(i), 4, this.cpu) | 0 : undefined;
      },
      set: (_t, k, v) => {
        const i = index(k);
        if (i < 0)
          throw new PercpuError(`this_cpu_words: a checked view takes index writes only, not ${String(k)}`, 'EINVAL');
        if (i < words) this.write(addr(i), Number(v) | 0, 4);
        return true;
      },
    });
  }

  /**
   * Looks at this CPU's watched views. A live one whose area was freed (its copy's tags turned
   * to the freed tag) or whose frames the page table no longer maps at its address gets a
   * snapshot of its words; one whose bytes have a new owner can be compared with nothing and is
   * dropped. A watched one whose words changed since the snapshot was written through: a use
   * after free by this CPU, or, where the page table maps the address elsewhere now, a write
   * through a stale translation (as checkPhys() says it). While an allocation is in flight the
   * kernel may be zeroing the bytes for their next owner, so a word that became zero then is
   * looked at again later.
   */
  private watchViews(): void {
    if (this.views.length === 0) return;
    const ck = this.checker!;
    const epoch = ck.epoch();
    const gen = Atomics.load(this.header, H_PT_GEN);
    if (epoch === this.viewEpoch && gen === this.viewGen && this.views.every((v) => v.snap === null)) return;
    const kept: WatchedView[] = [];
    let fault: AccessFault | null = null;
    for (const v of this.views) {
      const len = v.words * 4;
      const mapped = ck.phys(v.va) === v.phys && ck.phys(v.va + len - 1) === v.phys + len - 1;
      const first = ck.tagAt(v.phys);
      // the bytes are still the view's area's, live or freed: nobody else may write them
      const ours = (first === v.tag || first === -v.tag) && ck.tagAt(v.phys + len - 1) === first;
      if (!ours) continue;
      kept.push(v);
      if (mapped && first === v.tag) {
        v.snap = null; // live, where it was made: the view is good
        continue;
      }
      if (v.snap === null) {
        v.snap = this.i32.slice(v.phys / 4, v.phys / 4 + v.words);
        continue;
      }
      const busy = ck.busy();
      for (let i = 0; i < v.words && !fault; i++) {
        const now = this.i32[v.phys / 4 + i]!;
        if (now === v.snap[i] || (now === 0 && busy)) continue;
        const addr = v.va + i * 4;
        fault = mapped
          ? {
              kind: 'use-after-free',
              cpu: this.cpu,
              access: 'write',
              addr,
              len: 4,
              tag: -v.tag,
              unitCpu: tagCpu(v.tag),
              detail: 'wrote an area that was freed',
            }
          : ck.checkPhys(this.cpu, addr, v.phys + i * 4, 4);
        if (fault && this.ctx.count_violations && fault.kind !== 'unmapped') {
          // counted once: the snapshot takes the new words
          this.faults.push(fault);
          fault = null;
          v.snap.set(this.i32.subarray(v.phys / 4, v.phys / 4 + v.words));
          break;
        }
      }
    }
    this.views = kept;
    this.viewEpoch = epoch;
    this.viewGen = gen;
    if (fault) this.raise(fault, fault.addr, 'write');
  }

  /**
   * The end of a phase on this CPU: the last look at its watched views (a write through a
   * view of a freed area is reported here at the latest).
   */
  finish(): void {
    if (this.checker) this.watchViews();
    this.views = [];
  }

  /** The whole check of this_cpu_add's cached word, pinned in the checker when it passes. */
  private checkAdd(ptr: number): void {
    const ck = this.checker!;
    const va = ptr + this.offset;
    const epoch = ck.epoch();
    this.pinEpoch = -1;
    const f = ck.checkWrite(this.cpu, va, 4, this.cpu);
    const g = ck.checkPhys(this.cpu, va, this.tlbIdx * 4, 4);
    this.raise(f, va, 'write');
    this.raise(g, va, 'this_cpu_add');
    const pin = f || g ? null : ck.pin(va, epoch);
    if (pin) [this.pinEpoch, this.pinPte, this.pinEntry] = pin;
  }

  /** Caches the translation of an aligned 4-byte this_cpu location for the fast path. */
  private fillTlb(ptr: number, va: number): void {
    this.pinEpoch = -1;
    // the generation before the walk: an unmap during the walk makes the entry stale at once
    const gen = this.cmem ? this.cmem.ptGen() : this.header[H_PT_GEN]!;
    const phys = this.mem.translate(va);
    if (phys < 0 || phys % 4 !== 0 || va % PAGE_SIZE > PAGE_SIZE - 4) {
      this.tlbPtr = NaN;
      return;
    }
    this.tlbPtr = ptr;
    this.tlbIdx = phys / 4;
    this.tlbGen = gen;
    // what the entry holds now, whatever the code above meant to store
    this.cmem?.noteFill(va, this.tlbIdx * 4, this.tlbGen);
  }

  /** per_cpu(x, cpu) of a 64-bit variable: a plain read, two 32-bit halves on a 32-bit machine. */
  per_cpu_read64(ptr: number, cpu: number): bigint {
    const va = this.per_cpu_ptr(ptr, cpu);
    if (this.checker) this.checkRead(va, 8, cpu);
    const v = this.mem.read64(va);
    if (v === null) throw new CpuFault(this.cpu, va, this.mem.translate(va), 'per_cpu_read64');
    if (this.checker) this.checkPhys(va, this.mem.translate(va), 8);
    this.counts.reads++;
    return v;
  }

  /**
   * u64_stats_update_begin() on this CPU's sequence count at `syncp` (a 32-bit percpu
   * variable): odd while the writer updates its 64-bit statistics, so that a reader on another
   * CPU can tell a torn read and retry. On a 64-bit machine the kernel's is empty; this one
   * counts either way.
   */
  u64_stats_update_begin(syncp: number): void {
    this.this_cpu_write(syncp, (this.this_cpu_read(syncp) + 1) | 0);
  }

  u64_stats_update_end(syncp: number): void {
    this.this_cpu_write(syncp, (this.this_cpu_read(syncp) + 1) | 0);
  }

  /** u64_stats_fetch_begin() on CPU `cpu`'s count: the value to hand to u64_stats_fetch_retry(). */
  u64_stats_fetch_begin(syncp: number, cpu: number): number {
    this.gate?.point(P_SEQ_BEGIN, this.per_cpu_ptr(syncp, cpu));
    return this.per_cpu_read(syncp, cpu, 4);
  }

  /** u64_stats_fetch_retry(): whether the values read since `start` may be torn (read them again). */
  u64_stats_fetch_retry(syncp: number, cpu: number, start: number): boolean {
    const retry = (start & 1) !== 0 || this.per_cpu_read(syncp, cpu, 4) !== start;
    this.gate?.point(P_SEQ_END, this.per_cpu_ptr(syncp, cpu), retry ? 1 : 0);
    return retry;
  }

  this_cpu_add64(ptr: number, delta: bigint): bigint {
    const v = BigInt.asIntN(64, this.this_cpu_read64(ptr) + delta);
    this.this_cpu_write64(ptr, v);
    return v;
  }

  this_cpu_inc(ptr: number, width: 1 | 2 | 4 = 4): number {
    return this.this_cpu_add(ptr, 1, width);
  }

  this_cpu_inc64(ptr: number): bigint {
    return this.this_cpu_add64(ptr, 1n);
  }

  /**
   * A read at an address from this_cpu_ptr() or per_cpu_ptr(). `cpu` names whose copy it
   * must be; without it any live copy may be read.
   *
   * A free-running CPU's read of its own copy is checked after it is made, in one test of the
   * checker's caches: a read changes nothing, so the check finds what it would have found
   * before, and a miss reports as the check before would (the copy, then the fault, then the
   * value). Other reads, and every read of a controlled run (where the read is a scheduling
   * point of its own), are checked before and after.
   *
   * Keep read() and write() and what they call on a hit small: V8 inlines a call only while
   * its code and what that code inlined, times 1.2, fit 920 bytes of bytecode, and these are
   * near it (about 860 and 880); past it a loop calls them with the address boxed, at twice
   * the cost (bench dataops).
   */
  read(va: number, width: 1 | 2 | 4 = 4, cpu = ANY_CPU): number {
    if (width !== 4 && width !== 1 && width !== 2) this.badWidth(width, 'read');
    if (cpu !== ANY_CPU && cpu !== this.cpu) this.possible(cpu, 'read'); // this CPU is a possible one
    const ck = this.checker;
    if (ck !== null && (cpu !== this.cpu || this.cmem !== null)) return this.readChecked(ck, va, width, cpu);
    const v = width === 4 ? this.mem.read32(va) : this.mem.readSmall(va, width);
    if (ck !== null ? !ck.readHit(va, width, cpu, v) : v !== v) this.readMissed(va, width, cpu, v);
    this.counts.reads++;
    return v;
  }

  /** An own-copy read that read() found no cached check for (or, unchecked, that faulted): the checks in their order. */
  private readMissed(va: number, width: 1 | 2 | 4, cpu: number, v: number): void {
    const ck = this.checker;
    if (ck !== null) this.raise(ck.checkRead(this.cpu, va, width, cpu), va, 'read');
    if (v !== v) this.fault(va, NaN, 'read'); // NaN: no translation
    if (ck !== null) this.raise(ck.checkValue(this.cpu, va, width, v), va, 'read');
  }

  /** read() with the check before the read and the one after. */
  private readChecked(ck: AccessChecker, va: number, width: 1 | 2 | 4, cpu: number): number {
    this.raise(ck.checkRead(this.cpu, va, width, cpu), va, 'read');
    const v = width === 4 ? this.mem.read32(va) : this.mem.readSmall(va, width);
    if (v !== v) this.fault(va, NaN, 'read');
    if (cpu === this.cpu) this.raise(ck.checkValue(this.cpu, va, width, v), va, 'read');
    else this.checkRemoteRead(va, width);
    this.counts.reads++;
    return v;
  }

  /**
   * A write at `va`: this CPU's own copy, or with `remote` the copy of CPU `remote`
   * (per_cpu_ptr(p, remote)); `true` declares a remote write without naming the CPU.
   */
  write(va: number, value: number, width: 1 | 2 | 4 = 4, remote: boolean | number = false): void {
    if (width !== 4 && width !== 1 && width !== 2) this.badWidth(width, 'write');
    const owner = remote === false ? this.cpu : this.target(remote);
    const ck = this.checker;
    // the frame the checker's caches say the write must reach (-1: they decide nothing, check it whole)
    const want = ck === null ? -1 : ck.hitPhys(va, width, owner);
    if (ck !== null && want < 0) this.checkWrite(va, width, remote);
    const p = width === 4 ? this.mem.write32(va, value) : this.mem.writeSmall(va, value, width);
    if (p < 0) this.fault(va, p, 'write');
    if (ck !== null && (p !== want || !ck.mapped())) this.checkPhys(va, p, width);
    this.counts.writes++;
  }

  /** The oops of a read or write that did not translate (`code`: the write's fault code, NaN for a read). */
  private fault(va: number, code: number, op: string): never {
    throw new CpuFault(this.cpu, va, code === FAULT_UNALIGNED ? code : this.mem.translate(va), op);
  }

  /** A declared remote write: CPU `cpu`'s copy of the area at `ptr` (per_cpu(x, cpu) = v). */
  per_cpu_write(ptr: number, cpu: number, value: number, width: 1 | 2 | 4 = 4): void {
    this.possible(cpu, 'per_cpu_write');
    this.width(width, 'per_cpu_write');
    this.write(this.per_cpu_ptr(ptr, cpu), value, width, cpu);
  }

  /** Atomic load of 1, 2 or 4 bytes; `cpu` as for read(). */
  atomic_read(va: number, width: 1 | 2 | 4 = 4, cpu = ANY_CPU): number {
    this.width(width, 'atomic_read');
    if (cpu !== ANY_CPU) this.possible(cpu, 'atomic_read');
    if (this.checker) this.checkRead(va, width, cpu);
    const v = this.mem.atomicLoad(va, width);
    if (Number.isNaN(v))
      throw new CpuFault(this.cpu, va, va % width ? FAULT_UNALIGNED : this.mem.translate(va), 'atomic_read');
    if (this.checker) this.checkPhys(va, this.mem.translate(va), width);
    this.counts.reads++;
    return v;
  }

  /** Atomic add of 1, 2 or 4 bytes; returns the old value; `remote` as for write(). */
  atomic_add(va: number, delta: number, width: 1 | 2 | 4 = 4, remote: boolean | number = false): number {
    this.width(width, 'atomic_add');
    this.target(remote);
    if (this.checker) this.checkWrite(va, width, remote);
    const old = this.mem.atomicAdd(va, delta, width);
    if (Number.isNaN(old))
      throw new CpuFault(this.cpu, va, va % width ? FAULT_UNALIGNED : this.mem.translate(va), 'atomic_add');
    if (this.checker) this.checkPhys(va, this.mem.translate(va), width);
    this.counts.reads++;
    this.counts.writes++;
    return old;
  }

  /** Atomic store of 1, 2 or 4 bytes; `remote` as for write(). */
  atomic_write(va: number, value: number, width: 1 | 2 | 4 = 4, remote: boolean | number = false): void {
    this.width(width, 'atomic_write');
    this.target(remote);
    if (this.checker) this.checkWrite(va, width, remote);
    const p = this.mem.atomicStore(va, value, width);
    if (p < 0) throw new CpuFault(this.cpu, va, p, 'atomic_write');
    if (this.checker) this.checkPhys(va, p, width);
    this.counts.writes++;
  }

  /** Atomic store of 8 bytes; `remote` as for write(). */
  atomic_write64(va: number, value: bigint, remote: boolean | number = false): void {
    if (this.checker) this.checkWrite(va, 8, remote);
    const p = this.mem.atomicStore64(va, value);
    if (p < 0) throw new CpuFault(this.cpu, va, p, 'atomic_write64');
    if (this.checker) this.checkPhys(va, p, 8);
    this.counts.writes++;
  }

  /** atomic64_add(): an atomic add of 8 bytes; returns the old value; `remote` as for write(). */
  atomic_add64(va: number, delta: bigint, remote: boolean | number = false): bigint {
    if (this.checker) this.checkWrite(va, 8, remote);
    const old = this.mem.atomicAdd64(va, delta);
    if (old === null)
      throw new CpuFault(this.cpu, va, va % 8 ? FAULT_UNALIGNED : this.mem.translate(va), 'atomic_add64');
    if (this.checker) this.checkPhys(va, this.mem.translate(va), 8);
    this.counts.reads++;
    this.counts.writes++;
    return old;
  }

  /** Atomic load of 8 bytes; `cpu` as for read(). */
  atomic_read64(va: number, cpu = ANY_CPU): bigint {
    if (this.checker) this.checkRead(va, 8, cpu);
    const v = this.mem.atomicLoad64(va);
    if (v === null)
      throw new CpuFault(this.cpu, va, va % 8 ? FAULT_UNALIGNED : this.mem.translate(va), 'atomic_read64');
    if (this.checker) this.checkPhys(va, this.mem.translate(va), 8);
    this.counts.reads++;
    return v;
  }

  /** Writes bytes at `va` (own copy, or `remote` as for write()). */
  writeBytes(va: number, data: Uint8Array, remote: boolean | number = false): void {
    if (this.checker) this.checkWrite(va, data.length, remote);
    const p = this.mem.writeBytes(va, data);
    if (p < 0) throw new CpuFault(this.cpu, va, p, 'write');
    if (this.checker) this.checkBytes(va, data, this.target(remote));
    this.counts.writes++;
  }

  /** Fills `len` bytes at `va` with a byte pattern (memset); `remote` as for write(). */
  fill(va: number, byte: number, len: number, remote: boolean | number = false): void {
    if (this.checker) this.checkWrite(va, len, remote);
    const p = this.mem.fill(va, byte, len);
    if (p < 0) throw new CpuFault(this.cpu, va, p, 'memset');
    if (this.checker) {
      const owner = this.target(remote);
      if (owner === this.cpu) this.raise(this.checker.checkFill(this.cpu, va, byte, len), va, 'access');
      else this.checkPhys(va, this.mem.translate(va), len);
    }
    this.counts.writes++;
  }

  /** Reads `len` bytes at `va`; `cpu` as for read(). */
  bytes(va: number, len: number, cpu = ANY_CPU): Uint8Array {
    if (this.checker) this.checkRead(va, len, cpu);
    const b = this.mem.readBytes(va, len);
    if (!b) throw new CpuFault(this.cpu, va, this.mem.translate(va), 'read');
    if (this.checker) this.checkBytes(va, b, cpu);
    this.counts.reads++;
    return b;
  }

  // ---------------------------------------------------------------- sync

  /**
   * cpu_relax(): lets the other CPUs (and the allocator) run before this one polls again.
   * Rejects once another CPU has failed the phase: what this one polls for may never come.
   */
  relax(): Promise<void> {
    this.alive();
    try {
      this.watchViews();
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (this.gate) {
      // the controller picks who runs next: the event loop has no say
      this.gate.point(P_RELAX);
      try {
        this.checkAbort('in cpu_relax()');
      } catch (e) {
        return Promise.reject(e as Error);
      }
      return Promise.resolve();
    }
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        try {
          this.checkAbort('in cpu_relax()');
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      }),
    );
  }

  /** Whether another CPU has failed the phase (the machine's abort flag): for loops that spin without relax(). */
  get aborted(): boolean {
    return Atomics.load(this.header, H_ABORT) !== 0;
  }

  /** Throws when another CPU has failed the phase (the machine's abort flag). */
  private checkAbort(where: string): void {
    if (Atomics.load(this.header, H_ABORT))
      throw new PercpuError(`cpu ${this.cpu}: stopped ${where}: another CPU failed`, 'ABORTED');
  }

  /** A controlled run: the first scheduling point of a phase, before the workload runs. */
  start(): void {
    this.gate?.point(P_START);
  }

  /** A controlled run: the phase has ended on this CPU. */
  end(): void {
    this.gate?.done();
  }

  /**
   * Waits until every CPU running the phase has reached the barrier. Bounded: a CPU that
   * never arrives makes the others fail instead of hanging.
   */
  async barrier(): Promise<void> {
    this.watchViews();
    const h = this.header;
    const gen = Atomics.load(h, H_BARRIER_GEN);
    const parties = Atomics.load(h, H_BARRIER_PARTIES);
    this.counts.barriers++;
    if (Atomics.add(h, H_BARRIER_COUNT, 1) === parties - 1) {
      Atomics.store(h, H_BARRIER_COUNT, 0);
      Atomics.add(h, H_BARRIER_GEN, 1);
      Atomics.notify(h, H_BARRIER_GEN);
      this.gate?.point(P_RELAX);
      return;
    }
    if (this.gate) {
      // parked until the last CPU arrives: the controller runs the others meanwhile
      this.gate.block(gen);
      return;
    }
    // the wait is bounded by how long nobody makes progress, not by how long it takes
    const deadline = Date.now() + this.ctx.barrier_timeout_ms;
    const progress = this.progress();
    this.atBarrier(1);
    try {
      await this.waitBarrier(gen, deadline, progress);
    } finally {
      this.atBarrier(0);
    }
    // another CPU may have freed a viewed area before it arrived: snapshot it now
    this.watchViews();
  }

  /** Marks this CPU as waiting at a barrier, for the machine's watchdog. */
  private atBarrier(on: 0 | 1): void {
    if (this.beat && this.beat.length >= 2 * this.nr_cpus) Atomics.store(this.beat, this.nr_cpus + this.cpu, on);
  }

  private async waitBarrier(gen: number, deadline: number, progress: number): Promise<void> {
    const h = this.header;
    while (Atomics.load(h, H_BARRIER_GEN) === gen) {
      this.checkAbort('at a barrier');
      const now = this.progress();
      if (now !== progress) {
        progress = now;
        deadline = Date.now() + this.ctx.barrier_timeout_ms;
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new PercpuError(
          `cpu ${this.cpu}: timed out at a barrier: no CPU made progress for ${Math.round(this.ctx.barrier_timeout_ms / 100) / 10} s`,
          'ETIMEDOUT',
        );
      const w = Atomics.waitAsync(h, H_BARRIER_GEN, gen, Math.min(left, 100));
      if (w.async) await w.value;
    }
  }
}

function wrap(v: number, width: 1 | 2 | 4): number {
  return width === 1 ? v & 0xff : width === 2 ? v & 0xffff : v | 0;
}
