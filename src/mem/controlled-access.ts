/**
 * MemAccess with a scheduling point after every shared-memory operation of the data path, for
 * controlled runs: each generation read, each page-table read, each TLB fill and each access
 * (each 32-bit half of a split 64-bit one) parks the thread at its gate and reports what it
 * did. A subclass, so that the plain MemAccess of uncontrolled runs keeps its hot path.
 *
 * On a 32-bit machine (word 32) a plain 64-bit access is two 32-bit ones, as on i386; atomic
 * 64-bit accesses stay whole (cmpxchg8b).
 */
import { MemAccess } from './access.ts';
import { F_ATOMIC, F_HALF1, F_HALF2, F_WRITE, type Gate, P_ACCESS, P_FILL, P_GEN, P_PTE } from './gate.ts';
import { H_PT_GEN, PAGE_SIZE, VMALLOC_START } from './layout.ts';

/** Bugs of the data path a test can build in (the CPU threads' side of the protocol). */
export const DATA_PATH_BUGS = {
  'tlb-gen-after-walk':
    'the TLB fill reads the page-table generation after the table walk instead of before it, and tags the entry with it',
  'tlb-tag-after-walk':
    'the TLB fill reads the generation before the walk, but tags the entry with one it reads again after it',
  'store64-split': 'a 64-bit store (plain or atomic) is done as two 32-bit stores, on a 64-bit machine too',
} as const;

export type DataPathBug = keyof typeof DATA_PATH_BUGS;

export interface ControlledAccessOptions {
  /** the machine's word: 32 splits plain 64-bit accesses in two */
  word?: 32 | 64;
  bugs?: readonly DataPathBug[];
}

export class ControlledAccess extends MemAccess {
  readonly word: 32 | 64;
  private readonly genAfterWalk: boolean;
  private readonly tagAfterWalk: boolean;
  private readonly splitStores: boolean;
  /** the frame the current operation's last walk found (-1 none), or -2 when it walked nothing */
  private walked = -2;
  /** the address the current operation started at */
  private opVa = NaN;
  /** generation reads in the current operation */
  private opGens = 0;
  /** depth of nested operations: only the outermost reports its access */
  private depth = 0;

  constructor(
    sab: SharedArrayBuffer,
    private readonly gate: Gate,
    o: ControlledAccessOptions = {},
  ) {
    super(sab);
    this.word = o.word ?? 64;
    this.genAfterWalk = o.bugs?.includes('tlb-gen-after-walk') ?? false;
    this.tagAfterWalk = o.bugs?.includes('tlb-tag-after-walk') ?? false;
    this.splitStores = o.bugs?.includes('store64-split') ?? false;
  }

  override ptGen(): number {
    const g = Atomics.load(this.header, H_PT_GEN);
    if (this.genAfterWalk && this.opGens++ === 0 && this.opVa - (this.opVa & (PAGE_SIZE - 1)) !== this.tlbPage)
      return g; // the old order: no read before the walk on a miss
    this.gate.point(P_GEN, 0, g);
    return g;
  }

  override translate(va: number): number {
    const p = super.translate(va);
    if (va >= VMALLOC_START && va < this.vmallocEnd) {
      const pfn = p < 0 ? -1 : Math.floor(p / PAGE_SIZE);
      this.walked = pfn;
      this.gate.point(P_PTE, va - (va & (PAGE_SIZE - 1)), pfn);
    }
    return p;
  }

  /**
   * The machine's own fill (MemAccess.fillTlb, whose generation reads are points here), then a
   * point that says what it cached, if anything, read from the entry itself: a controlled run
   * checks the protocol the uncontrolled path runs, not a copy of it, and not what the fill
   * was asked to store.
   */
  protected override fillTlb(va: number, off: number, phys: number, gen: number): void {
    // the old order, as a bug to build in: the generation read after the walk, not before
    if (this.genAfterWalk || this.tagAfterWalk) gen = this.ptGen();
    const page = this.tlbPage;
    const word = this.tlbWord;
    const tag = this.tlbGen;
    super.fillTlb(va, off, phys, gen);
    if (this.tlbPage !== page || this.tlbWord !== word || this.tlbGen !== tag)
      this.gate.point(P_FILL, this.tlbPage, this.tlbFrame(), this.tlbGen);
  }

  /** Runs one operation and reports it: where, how long, how, and through which frame. */
  private op<T>(va: number, len: number, flags: number, fn: () => T): T {
    if (this.depth > 0) return fn();
    this.depth++;
    this.walked = -2;
    this.opVa = va;
    this.opGens = 0;
    let r: T;
    try {
      r = fn();
    } finally {
      this.depth--;
    }
    this.report(va, len, flags);
    return r;
  }

  private report(va: number, len: number, flags: number): void {
    let frame = -1;
    const vm = va >= VMALLOC_START && va < this.vmallocEnd;
    if (vm && (va & (PAGE_SIZE - 1)) + len <= PAGE_SIZE)
      frame = this.walked !== -2 ? this.walked : va - (va & (PAGE_SIZE - 1)) === this.tlbPage ? this.tlbFrame() : -1;
    this.gate.point(P_ACCESS, va, len, flags, frame);
  }

  private tlbFrame(): number {
    return Math.floor((this.tlbWord * 4) / PAGE_SIZE);
  }

  override read8(va: number): number {
    return this.op(va, 1, 0, () => super.read8(va));
  }
  override write8(va: number, v: number): number {
    return this.op(va, 1, F_WRITE, () => super.write8(va, v));
  }
  override read16(va: number): number {
    return this.op(va, 2, 0, () => super.read16(va));
  }
  override write16(va: number, v: number): number {
    return this.op(va, 2, F_WRITE, () => super.write16(va, v));
  }
  override readSmall(va: number, width: 1 | 2): number {
    return width === 1 ? this.read8(va) : this.read16(va);
  }
  override writeSmall(va: number, v: number, width: 1 | 2): number {
    return width === 1 ? this.write8(va, v) : this.write16(va, v);
  }
  override read32(va: number): number {
    return this.op(va, 4, 0, () => super.read32(va));
  }
  override write32(va: number, v: number): number {
    return this.op(va, 4, F_WRITE, () => super.write32(va, v));
  }

  override read64(va: number): bigint | null {
    if (this.word === 64) return this.op(va, 8, 0, () => super.read64(va));
    const lo = this.op(va, 4, F_HALF1, () => super.read32(va));
    const hi = this.op(va + 4, 4, F_HALF2, () => super.read32(va + 4));
    if (Number.isNaN(lo) || Number.isNaN(hi)) return null;
    return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  }

  override write64(va: number, v: bigint): number {
    if (this.word === 64 && !this.splitStores) return this.op(va, 8, F_WRITE, () => super.write64(va, v));
    const c = this.checkRange(va, 8);
    if (c < 0) return c;
    const lo = this.op(va, 4, F_WRITE | F_HALF1, () => super.write32(va, Number(BigInt.asIntN(32, v))));
    if (lo < 0) return lo;
    const hi = this.op(va + 4, 4, F_WRITE | F_HALF2, () => super.write32(va + 4, Number(BigInt.asIntN(32, v >> 32n))));
    return hi < 0 ? hi : lo;
  }

  override atomicLoad(va: number, width: 1 | 2 | 4): number {
    return this.op(va, width, F_ATOMIC, () => super.atomicLoad(va, width));
  }
  override atomicStore(va: number, value: number, width: 1 | 2 | 4): number {
    return this.op(va, width, F_ATOMIC | F_WRITE, () => super.atomicStore(va, value, width));
  }
  override atomicAdd(va: number, delta: number, width: 1 | 2 | 4): number {
    return this.op(va, width, F_ATOMIC | F_WRITE, () => super.atomicAdd(va, delta, width));
  }
  override atomicLoad64(va: number): bigint | null {
    return this.op(va, 8, F_ATOMIC, () => super.atomicLoad64(va));
  }
  override atomicStore64(va: number, value: bigint): number {
    if (!this.splitStores) return this.op(va, 8, F_ATOMIC | F_WRITE, () => super.atomicStore64(va, value));
    if (va % 8) return this.op(va, 8, F_ATOMIC | F_WRITE, () => super.atomicStore64(va, value));
    const f = F_ATOMIC | F_WRITE;
    const lo = this.op(va, 4, f | F_HALF1, () => super.atomicStore(va, Number(BigInt.asIntN(32, value)), 4));
    if (lo < 0) return lo;
    const hi = this.op(va + 4, 4, f | F_HALF2, () =>
      super.atomicStore(va + 4, Number(BigInt.asIntN(32, value >> 32n)), 4),
    );
    return hi < 0 ? hi : lo;
  }
  override atomicAdd64(va: number, v: bigint): bigint | null {
    return this.op(va, 8, F_ATOMIC | F_WRITE, () => super.atomicAdd64(va, v));
  }
  override readBytes(va: number, len: number): Uint8Array | null {
    return this.op(va, len, 0, () => super.readBytes(va, len));
  }
  override writeBytes(va: number, data: Uint8Array): number {
    return this.op(va, data.length, F_WRITE, () => super.writeBytes(va, data));
  }
  override fill(va: number, value: number, len: number): number {
    return this.op(va, len, F_WRITE, () => super.fill(va, value, len));
  }

  /** An access the caller made itself through a cached frame (PerCpu's this_cpu fast path). */
  noteAccess(va: number, len: number, flags: number, phys: number): void {
    this.gate.point(P_ACCESS, va, len, flags, Math.floor(phys / PAGE_SIZE));
  }

  /** A TLB fill the caller made itself (PerCpu's this_cpu fast path). */
  noteFill(va: number, phys: number, gen: number): void {
    this.gate.point(P_FILL, va - (va & (PAGE_SIZE - 1)), Math.floor(phys / PAGE_SIZE), gen);
  }
}

/** The data-path bugs a free-running CPU can be built with (nothing parks it between two steps). */
export const FREE_DATA_PATH_BUGS = ['store64-split'] as const;
export type FreeDataPathBug = (typeof FREE_DATA_PATH_BUGS)[number];

/**
 * MemAccess with a bug built in, for free-running threads: what the torn-access probe of a
 * stress run on free threads must catch by real parallelism alone.
 */
export class BuggedAccess extends MemAccess {
  private readonly splitStores: boolean;

  constructor(sab: SharedArrayBuffer, bugs: readonly FreeDataPathBug[]) {
    super(sab);
    this.splitStores = bugs.includes('store64-split');
  }

  override write64(va: number, v: bigint): number {
    if (!this.splitStores || va % 8) return super.write64(va, v);
    const p = this.translate(va);
    if (p < 0) return p;
    this.i32[p >>> 2] = Number(BigInt.asIntN(32, v));
    this.i32[(p >>> 2) + 1] = Number(BigInt.asIntN(32, v >> 32n));
    return p;
  }

  override atomicStore64(va: number, value: bigint): number {
    if (!this.splitStores || va % 8) return super.atomicStore64(va, value);
    const p = this.translate(va);
    if (p < 0) return p;
    Atomics.store(this.i32, p >>> 2, Number(BigInt.asIntN(32, value)));
    Atomics.store(this.i32, (p >>> 2) + 1, Number(BigInt.asIntN(32, value >> 32n)));
    return p;
  }
}
