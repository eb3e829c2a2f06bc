/**
 * Address translation and memory access from any thread, given only the shared buffer.
 *
 * This is the hot path of every per-CPU read and write, so it never throws and never
 * allocates: translate() returns a physical address or a negative fault code, reads return
 * NaN (or null for 64-bit) on a fault, and writes return the physical address written or a
 * negative fault code. The direct map is an offset; the vmalloc range goes through the page
 * table in the buffer.
 */
import {
  H_PT_GEN as LAYOUT_H_PT_GEN,
  PAGE_OFFSET as LAYOUT_PAGE_OFFSET,
  PAGE_SIZE as LAYOUT_PAGE_SIZE,
  VMALLOC_START as LAYOUT_VMALLOC_START,
  readHeader,
} from './layout.ts';

// Local copies: the hot paths below read these on every access, and a module-local const
// compiles to an immediate where an imported binding would be a checked load.
const PAGE_SIZE = 4096;
const PAGE_OFFSET = 0x0000_1000_0000_0000;
const VMALLOC_START = 0x0000_2000_0000_0000;
const H_PT_GEN = 68;
if (
  PAGE_SIZE !== LAYOUT_PAGE_SIZE ||
  PAGE_OFFSET !== LAYOUT_PAGE_OFFSET ||
  VMALLOC_START !== LAYOUT_VMALLOC_START ||
  H_PT_GEN !== LAYOUT_H_PT_GEN
)
  throw new Error('access.ts: the layout constants changed; update the local copies');

/** The address is in no mapped region (outside the direct map and the vmalloc range). */
export const FAULT_RANGE = -1;
/** A vmalloc address whose page is not present. */
export const FAULT_NOT_PRESENT = -2;
/** An atomic access that is not naturally aligned. */
export const FAULT_UNALIGNED = -3;

export type FaultCode = typeof FAULT_RANGE | typeof FAULT_NOT_PRESENT | typeof FAULT_UNALIGNED;

export function faultName(code: number): string {
  switch (code) {
    case FAULT_RANGE:
      return 'address outside the direct map and the vmalloc range';
    case FAULT_NOT_PRESENT:
      return 'page not present';
    case FAULT_UNALIGNED:
      return 'unaligned atomic access';
    default:
      return `fault ${code}`;
  }
}

export class MemAccess {
  readonly physBytes: number;
  readonly vmallocEnd: number;
  readonly pt: Int32Array;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;
  readonly dv: DataView;
  protected readonly header: Int32Array;
  /**
   * A one-entry TLB for 32-bit access: the virtual page last translated, the word index of
   * its frame, and the page-table generation it is good for (every unmap bumps it).
   */
  protected tlbPage = -1;
  protected tlbWord = 0;
  protected tlbGen = -1;
  /**
   * false: fill() and writeBytes() check the mapping and store nothing (see
   * MachineConfig.contents); a machine whose buffer holds no bytes (layout.ts) is always so
   */
  private readonly contents: boolean;

  constructor(
    readonly sab: SharedArrayBuffer,
    opts: { contents?: boolean } = {},
  ) {
    const l = readHeader(sab);
    this.contents = (opts.contents ?? true) && l.contents !== false;
    this.physBytes = l.memoryBytes;
    this.vmallocEnd = VMALLOC_START + l.vmallocBytes;
    this.pt = new Int32Array(sab, l.ptOffset, l.vmallocPages);
    const bytes = l.physBytes;
    this.u8 = new Uint8Array(sab, l.physOffset, bytes);
    this.u16 = new Uint16Array(sab, l.physOffset, bytes / 2);
    this.i32 = new Int32Array(sab, l.physOffset, bytes / 4);
    this.i64 = new BigInt64Array(sab, l.physOffset, bytes / 8);
    this.dv = new DataView(sab, l.physOffset, bytes);
    this.header = new Int32Array(sab, 0, PAGE_SIZE / 4);
  }

  /**
   * Remembers the frame of a translated page for the next aligned 32-bit access. The fill is a
   * sequence-lock reader: `gen` was read before the walk, and the entry is kept only if the
   * generation is still `gen` after it, so an unmap that ran during the walk is never cached
   * as current.
   */
  protected fillTlb(va: number, off: number, phys: number, gen: number): void {
    if (this.ptGen() !== gen) return;
    this.tlbPage = va - off;
    this.tlbWord = (phys - off) / 4;
    this.tlbGen = gen;
  }

  /** The page-table generation (vmalloc.ts bumps it after every unmap): what a TLB entry is good for. */
  ptGen(): number {
    return this.header[H_PT_GEN]!;
  }

  /**
   * Virtual address -> physical address, or a negative fault code. The vmalloc range comes
   * first: dynamic per-CPU areas live there.
   */
  translate(va: number): number {
    const v = va - VMALLOC_START;
    if (v >= 0 && va < this.vmallocEnd) {
      const pfn1 = this.pt[(v / PAGE_SIZE) | 0]!;
      return pfn1 === 0 ? FAULT_NOT_PRESENT : (pfn1 - 1) * PAGE_SIZE + (va & (PAGE_SIZE - 1));
    }
    const d = va - PAGE_OFFSET;
    if (d >= 0 && d < this.physBytes) return d;
    return FAULT_RANGE;
  }

  /** Translates every page of [va, va + len); returns the first fault code, or 0. */
  checkRange(va: number, len: number): number {
    if (len <= 0) return 0;
    const first = va - (va & (PAGE_SIZE - 1));
    for (let p = first; p < va + len; p += PAGE_SIZE) {
      const r = this.translate(p < va ? va : p);
      if (r < 0) return r;
    }
    return 0;
  }

  read8(va: number): number {
    const p = this.translate(va);
    return p < 0 ? NaN : this.u8[p]!;
  }

  write8(va: number, v: number): number {
    const p = this.translate(va);
    if (p >= 0) this.u8[p] = v;
    return p;
  }

  read16(va: number): number {
    if ((va & (PAGE_SIZE - 1)) > PAGE_SIZE - 2) return this.readSlow(va, 2);
    const p = this.translate(va);
    if (p < 0) return NaN;
    return (p & 1) === 0 ? this.u16[p >>> 1]! : this.dv.getUint16(p, true);
  }

  write16(va: number, v: number): number {
    if ((va & (PAGE_SIZE - 1)) > PAGE_SIZE - 2) return this.writeSlow(va, 2, v);
    const p = this.translate(va);
    if (p < 0) return p;
    if ((p & 1) === 0) this.u16[p >>> 1] = v;
    else this.dv.setUint16(p, v, true);
    return p;
  }

  /**
   * read8() or read16() through the TLB of 32-bit access (a hit is a few loads, and a caller
   * that serves every width inlines no table walk: the JIT's inlining budget is counted in code
   * size). ControlledAccess reports it as read8() or read16().
   */
  readSmall(va: number, width: 1 | 2): number {
    const off = va & (PAGE_SIZE - 1);
    if ((off & (width - 1)) === 0) {
      const gen = this.ptGen();
      if (va - off === this.tlbPage && gen === this.tlbGen)
        return width === 1 ? this.u8[this.tlbWord * 4 + off]! : this.u16[this.tlbWord * 2 + (off >> 1)]!;
    }
    return this.readSmallMiss(va, width);
  }

  /** readSmall() past the TLB (or unaligned): one table lookup, which fills it; across a page, byte by byte. */
  private readSmallMiss(va: number, width: 1 | 2): number {
    const off = va & (PAGE_SIZE - 1);
    if (off > PAGE_SIZE - width) return this.readSlow(va, width);
    const gen = this.ptGen();
    const p = this.translate(va);
    if (p < 0) return NaN;
    this.fillTlb(va, off, p, gen);
    return width === 1 ? this.u8[p]! : (p & 1) === 0 ? this.u16[p >>> 1]! : this.dv.getUint16(p, true);
  }

  /** write8() or write16() as readSmall(); returns the physical address written, or a fault code. */
  writeSmall(va: number, v: number, width: 1 | 2): number {
    const off = va & (PAGE_SIZE - 1);
    if ((off & (width - 1)) === 0) {
      const gen = this.ptGen();
      if (va - off === this.tlbPage && gen === this.tlbGen) {
        const p = this.tlbWord * 4 + off;
        if (width === 1) this.u8[p] = v;
        else this.u16[p >>> 1] = v;
        return p;
      }
    }
    return this.writeSmallMiss(va, v, width);
  }

  private writeSmallMiss(va: number, v: number, width: 1 | 2): number {
    const off = va & (PAGE_SIZE - 1);
    if (off > PAGE_SIZE - width) return this.writeSlow(va, width, v);
    const gen = this.ptGen();
    const p = this.translate(va);
    if (p < 0) return p;
    this.fillTlb(va, off, p, gen);
    if (width === 1) this.u8[p] = v;
    else if ((p & 1) === 0) this.u16[p >>> 1] = v;
    else this.dv.setUint16(p, v, true);
    return p;
  }

  /**
   * 32-bit read, as a signed integer. The TLB hit is all that is inline: the JIT inlines a
   * checked access whole only within a budget, so the rest is out of line.
   */
  read32(va: number): number {
    const off = va & (PAGE_SIZE - 1);
    if ((off & 3) === 0) {
      const gen = this.ptGen();
      if (va - off === this.tlbPage && gen === this.tlbGen) return this.i32[this.tlbWord + (off >> 2)]!;
      return this.read32Fill(va, off, gen);
    }
    return this.read32Unaligned(va, off);
  }

  /** An aligned 32-bit read that missed the TLB: one table lookup, which fills it. */
  private read32Fill(va: number, off: number, gen: number): number {
    const p = this.translate(va);
    if (p < 0) return NaN;
    this.fillTlb(va, off, p, gen);
    return this.i32[p / 4]!;
  }

  private read32Unaligned(va: number, off: number): number {
    if (off > PAGE_SIZE - 4) return this.readSlow(va, 4) | 0;
    const p = this.translate(va);
    return p < 0 ? NaN : this.dv.getInt32(p, true);
  }

  /** 32-bit write; returns the physical address written, or a fault code. */
  write32(va: number, value: number): number {
    const off = va & (PAGE_SIZE - 1);
    if ((off & 3) === 0) {
      // aligned and inside one page: the TLB, or one table lookup to fill it
      const gen = this.ptGen();
      if (va - off === this.tlbPage && gen === this.tlbGen) {
        const w = this.tlbWord + (off >> 2);
        this.i32[w] = value;
        return w * 4;
      }
      return this.write32Fill(va, off, value, gen);
    }
    return this.write32Unaligned(va, off, value);
  }

  private write32Fill(va: number, off: number, value: number, gen: number): number {
    const p = this.translate(va);
    if (p < 0) return p;
    this.fillTlb(va, off, p, gen);
    this.i32[p / 4] = value;
    return p;
  }

  private write32Unaligned(va: number, off: number, value: number): number {
    if (off > PAGE_SIZE - 4) return this.writeSlow(va, 4, value);
    const p = this.translate(va);
    if (p >= 0) this.dv.setInt32(p, value, true);
    return p;
  }

  read64(va: number): bigint | null {
    if ((va & (PAGE_SIZE - 1)) > PAGE_SIZE - 8) {
      const lo = this.readSlow(va, 4);
      const hi = this.readSlow(va + 4, 4);
      if (Number.isNaN(lo) || Number.isNaN(hi)) return null;
      return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
    }
    const p = this.translate(va);
    if (p < 0) return null;
    return (p & 7) === 0 ? this.i64[p >>> 3]! : this.dv.getBigInt64(p, true);
  }

  write64(va: number, v: bigint): number {
    if ((va & (PAGE_SIZE - 1)) > PAGE_SIZE - 8) {
      const c = this.checkRange(va, 8);
      if (c < 0) return c;
      this.writeSlow(va, 4, Number(BigInt.asUintN(32, v)));
      return this.writeSlow(va + 4, 4, Number(BigInt.asUintN(32, v >> 32n)));
    }
    const p = this.translate(va);
    if (p < 0) return p;
    if ((p & 7) === 0) this.i64[p >>> 3] = v;
    else this.dv.setBigInt64(p, v, true);
    return p;
  }

  /**
   * Atomic load, store and add for 1, 2 and 4 byte values (Atomics on the shared views).
   * The address must be naturally aligned; a fault or misalignment gives NaN (load, add) or a
   * negative fault code (store).
   */
  atomicLoad(va: number, width: 1 | 2 | 4): number {
    const p = this.atomicPhys(va, width);
    if (p < 0) return NaN;
    return width === 1
      ? Atomics.load(this.u8, p)
      : width === 2
        ? Atomics.load(this.u16, p >>> 1)
        : Atomics.load(this.i32, p >>> 2);
  }

  atomicStore(va: number, value: number, width: 1 | 2 | 4): number {
    const p = this.atomicPhys(va, width);
    if (p < 0) return p;
    if (width === 1) Atomics.store(this.u8, p, value);
    else if (width === 2) Atomics.store(this.u16, p >>> 1, value);
    else Atomics.store(this.i32, p >>> 2, value);
    return p;
  }

  /** Returns the old value. */
  atomicAdd(va: number, delta: number, width: 1 | 2 | 4): number {
    const p = this.atomicPhys(va, width);
    if (p < 0) return NaN;
    return width === 1
      ? Atomics.add(this.u8, p, delta)
      : width === 2
        ? Atomics.add(this.u16, p >>> 1, delta)
        : Atomics.add(this.i32, p >>> 2, delta);
  }

  atomicLoad64(va: number): bigint | null {
    const p = this.atomicPhys(va, 8);
    return p < 0 ? null : Atomics.load(this.i64, p >>> 3);
  }

  atomicStore64(va: number, value: bigint): number {
    const p = this.atomicPhys(va, 8);
    if (p >= 0) Atomics.store(this.i64, p >>> 3, value);
    return p;
  }

  private atomicPhys(va: number, width: number): number {
    if (va % width !== 0) return FAULT_UNALIGNED;
    return this.translate(va);
  }

  /** The 32-bit shorthands of the calls above. */
  atomicAdd32(va: number, v: number): number {
    return this.atomicAdd(va, v, 4);
  }

  atomicLoad32(va: number): number {
    return this.atomicLoad(va, 4);
  }

  atomicStore32(va: number, v: number): number {
    return this.atomicStore(va, v, 4);
  }

  atomicAdd64(va: number, v: bigint): bigint | null {
    const p = this.atomicPhys(va, 8);
    return p < 0 ? null : Atomics.add(this.i64, p >>> 3, v);
  }

  /** Copies bytes out of virtual memory; returns null if any page faults. */
  readBytes(va: number, len: number): Uint8Array | null {
    if (this.checkRange(va, len) < 0) return null;
    const out = new Uint8Array(len);
    let i = 0;
    while (i < len) {
      const p = this.translate(va + i);
      const n = Math.min(len - i, PAGE_SIZE - ((va + i) & (PAGE_SIZE - 1)));
      out.set(this.u8.subarray(p, p + n), i);
      i += n;
    }
    return out;
  }

  /** Copies bytes into virtual memory; all pages are checked first, so a fault writes nothing. */
  writeBytes(va: number, data: Uint8Array): number {
    const c = this.checkRange(va, data.length);
    if (c < 0 || !this.contents) return c;
    let i = 0;
    while (i < data.length) {
      const p = this.translate(va + i);
      const n = Math.min(data.length - i, PAGE_SIZE - ((va + i) & (PAGE_SIZE - 1)));
      this.u8.set(data.subarray(i, i + n), p);
      i += n;
    }
    return 0;
  }

  /**
   * fill() of `len` bytes at base + offsets[u] for each unit u below n: a chunk's units, one
   * call for all. Returns the first unit that faults (the units before it are filled), or -1.
   * With contents each unit is a fill() of its own (a subclass's fill() sees each); without,
   * it only checks the mapping, with one page-table load per page.
   */
  fillUnits(base: number, offsets: readonly number[], n: number, value: number, len: number): number {
    if (this.contents) {
      for (let u = 0; u < n; u++) if (this.fill(base + offsets[u]!, value, len) < 0) return u;
      return -1;
    }
    if (len <= 0) return -1;
    const pt = this.pt;
    for (let u = 0; u < n; u++) {
      const va = base + offsets[u]!;
      const v = va - VMALLOC_START;
      if (v < 0 || va + len > this.vmallocEnd) {
        if (this.checkRange(va, len) < 0) return u; // the direct map, or outside both
        continue;
      }
      const last = ((v + len - 1) / PAGE_SIZE) | 0;
      for (let p = (v / PAGE_SIZE) | 0; p <= last; p++) if (pt[p] === 0) return u;
    }
    return -1;
  }

  /** memset over virtual memory, page by page; a fault writes nothing. */
  fill(va: number, value: number, len: number): number {
    if (len <= 0) return 0;
    const inPage = PAGE_SIZE - (va & (PAGE_SIZE - 1));
    if (len <= inPage) {
      // one page: translate once (the common case of a small new area)
      const p = this.translate(va);
      if (p < 0 || !this.contents) return p < 0 ? p : 0;
      const u8 = this.u8;
      if (len <= 32) for (let i = 0; i < len; i++) u8[p + i] = value;
      else u8.fill(value, p, p + len);
      return 0;
    }
    const c = this.checkRange(va, len);
    if (c < 0 || !this.contents) return c;
    let i = 0;
    while (i < len) {
      const p = this.translate(va + i);
      const n = Math.min(len - i, PAGE_SIZE - ((va + i) & (PAGE_SIZE - 1)));
      this.u8.fill(value, p, p + n);
      i += n;
    }
    return 0;
  }

  /** Little-endian access that crosses a page boundary, byte by byte. */
  private readSlow(va: number, n: number): number {
    if (this.checkRange(va, n) < 0) return NaN;
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.u8[this.translate(va + i)]!;
    return v;
  }

  private writeSlow(va: number, n: number, v: number): number {
    const c = this.checkRange(va, n);
    if (c < 0) return c;
    let p = 0;
    for (let i = 0; i < n; i++) {
      p = this.translate(va + i);
      this.u8[p] = (v >>> (8 * i)) & 0xff;
    }
    return this.translate(va);
  }
}
