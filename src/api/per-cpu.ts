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
import { H_ABORT, H_BARRIER_COUNT, H_BARRIER_GEN, H_BARRIER_PARTIES, H_PT_GEN, PAGE_SIZE } from '../mem/layout.ts';
import { Prng } from '../util/prng.ts';
import { ANY_CPU, type AccessFault, AccessChecker } from '../check/isolation.ts';

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
    this.beat = ctx.heartbeat ? new Int32Array(ctx.heartbeat) : null;
    const checker = ctx.check_isolation ? new AccessChecker(sab) : null;
    this.checker = checker?.enabled ? checker : null;
  }

  /** Raises (or records, when counting) what a check found. */
  private raise(f: AccessFault | null, va: number, op: string): void {
    if (!f) return;
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
    throw new PercpuError(
      `${op}: cpu ${String(cpu)} is not a possible CPU (this machine has cpus 0-${this.nr_cpus - 1})`,
      'EINVAL',
    );
  }

  /** Refuses a width other than 1, 2 or 4 bytes (a number holds no 8-byte value). */
  private width(width: number, op: string): void {
    if (width === 4 || width === 1 || width === 2) return;
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

  private checkRead32(va: number, width: Width, v: number, owner: number): void {
    if (owner === this.cpu) this.raise(this.checker!.checkValue(this.cpu, va, width as 1 | 2 | 4, v), va, 'read');
    else this.checkPhys(va, this.mem.translate(va), width);
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
    let r: Reply;
    if (this.gate) {
      this.gate.point(P_REQUEST);
      const p = this.port.request(req);
      this.gate.sent();
      r = await p;
      this.gate.replied();
    } else r = await this.port.request(req);
    this.alive();
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
    this.width(width, 'this_cpu_read');
    return this.read(this.this_cpu_ptr(ptr), width, this.cpu);
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
    if (this.checker)
      this.raise(
        this.checker.checkValue(this.cpu, va, 4, Number(BigInt.asIntN(32, v))) ??
          this.checker.checkValue(this.cpu, va + 4, 4, Number(BigInt.asIntN(32, v >> 32n))),
        va,
        'read',
      );
    this.counts.reads++;
    return v;
  }

  this_cpu_write(ptr: number, value: number, width: 1 | 2 | 4 = 4): void {
    this.width(width, 'this_cpu_write');
    this.write(this.this_cpu_ptr(ptr), value, width);
  }

  this_cpu_write64(ptr: number, value: bigint): void {
    const va = this.this_cpu_ptr(ptr);
    if (this.checker) this.checkWrite(va, 8, false);
    const p = this.mem.write64(va, value);
    if (p < 0) throw new CpuFault(this.cpu, va, p, 'this_cpu_write');
    if (this.checker) this.checkPhys(va, p, 8);
    this.counts.writes++;
  }

  /** this_cpu_add(): a read-modify-write of this CPU's copy; returns the new value. */
  this_cpu_add(ptr: number, delta: number, width: 1 | 2 | 4 = 4): number {
    if (width === 4 && ptr === this.tlbPtr && (this.cmem ? this.cmem.ptGen() : this.header[H_PT_GEN]) === this.tlbGen) {
      if (this.checker) {
        // the fast path is checked like any access: the copy, then the frame it caches
        const va = this.this_cpu_ptr(ptr);
        this.checkWrite(va, 4, false);
        this.raise(this.checker.checkPhys(this.cpu, va, this.tlbIdx * 4, 4), va, 'this_cpu_add');
      }
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
   * 4-byte aligned and its frames contiguous (always so within one page). With checking on,
   * the view is a checked one: every index read and write goes through the isolation checks
   * of this_cpu_read() and this_cpu_write(), including a fresh translation when the page
   * table has changed since the view was made, so a stale view is caught, not trusted.
   */
  this_cpu_words(ptr: number, words: number): Int32Array {
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
    // checked: each index access is an access of the data path, seen by the checker
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

  /** Caches the translation of an aligned 4-byte this_cpu location for the fast path. */
  private fillTlb(ptr: number, va: number): void {
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
   */
  read(va: number, width: 1 | 2 | 4 = 4, cpu = ANY_CPU): number {
    this.width(width, 'read');
    if (cpu !== ANY_CPU) this.possible(cpu, 'read');
    if (this.checker) this.checkRead(va, width, cpu);
    const v = width === 1 ? this.mem.read8(va) : width === 2 ? this.mem.read16(va) : this.mem.read32(va);
    if (Number.isNaN(v)) throw new CpuFault(this.cpu, va, this.mem.translate(va), 'read');
    if (this.checker) this.checkRead32(va, width, v, cpu);
    this.counts.reads++;
    return v;
  }

  /**
   * A write at `va`: this CPU's own copy, or with `remote` the copy of CPU `remote`
   * (per_cpu_ptr(p, remote)); `true` declares a remote write without naming the CPU.
   */
  write(va: number, value: number, width: 1 | 2 | 4 = 4, remote: boolean | number = false): void {
    this.width(width, 'write');
    this.target(remote);
    if (this.checker) this.checkWrite(va, width, remote);
    const p =
      width === 1
        ? this.mem.write8(va, value)
        : width === 2
          ? this.mem.write16(va, value)
          : this.mem.write32(va, value);
    if (p < 0) throw new CpuFault(this.cpu, va, p === FAULT_UNALIGNED ? p : this.mem.translate(va), 'write');
    if (this.checker) this.checkPhys(va, p, width);
    this.counts.writes++;
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
    if (this.checker) this.checkBytes(va, new Uint8Array(len).fill(byte), this.target(remote));
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
