/**
 * The checkers' own view of the machine's memory: a page-table walk and physical reads that
 * use only the buffer's header and the page-table words, nothing of src/mem's access path.
 * When the data path translates wrongly (a stale TLB entry, a bad fast path), this walk and
 * the data path disagree, and the checkers can say so. Usable in any thread.
 */
import { PAGE_OFFSET, PAGE_SIZE, VMALLOC_START, readHeader } from '../mem/layout.ts';

export class PageWalk {
  private readonly pt: Int32Array;
  private readonly physBytes: number;
  private readonly vmallocEnd: number;
  /** physical memory, byte by byte */
  readonly phys: Uint8Array;
  readonly nodeStartPfn: readonly number[];

  constructor(sab: SharedArrayBuffer) {
    const l = readHeader(sab);
    this.pt = new Int32Array(sab, l.ptOffset, l.vmallocPages);
    this.physBytes = l.memoryBytes;
    this.vmallocEnd = VMALLOC_START + l.vmallocBytes;
    this.phys = new Uint8Array(sab, l.physOffset, l.memoryBytes);
    this.nodeStartPfn = l.nodeStartPfn;
  }

  /** The physical address behind `va`, or -1 when nothing maps it. */
  walk(va: number): number {
    if (va >= VMALLOC_START && va < this.vmallocEnd) {
      const page = Math.floor((va - VMALLOC_START) / PAGE_SIZE);
      const entry = this.pt[page]!; // pfn + 1, 0 when not present
      return entry === 0 ? -1 : (entry - 1) * PAGE_SIZE + (va % PAGE_SIZE);
    }
    if (va >= PAGE_OFFSET && va < PAGE_OFFSET + this.physBytes) return va - PAGE_OFFSET;
    return -1;
  }

  /** The first byte of [va, va + len) that is not zero, as [offset, value], or null; -1 when unmapped. */
  firstNonZero(va: number, len: number): [number, number] | null | -1 {
    for (let i = 0; i < len;) {
      const p = this.walk(va + i);
      if (p < 0) return -1;
      const n = Math.min(len - i, PAGE_SIZE - ((va + i) % PAGE_SIZE));
      for (let k = 0; k < n; k++) if (this.phys[p + k] !== 0) return [i + k, this.phys[p + k]!];
      i += n;
    }
    return null;
  }

  /** Whether every page of [va, va + len) is mapped. */
  mapped(va: number, len: number): boolean {
    for (let i = 0; i < len;) {
      if (this.walk(va + i) < 0) return false;
      i += Math.min(len - i, PAGE_SIZE - ((va + i) % PAGE_SIZE));
    }
    return true;
  }

  /** The node whose memory holds a physical address. */
  nodeOf(phys: number): number {
    const pfn = Math.floor(phys / PAGE_SIZE);
    let n = 0;
    while (n + 1 < this.nodeStartPfn.length - 1 && pfn >= this.nodeStartPfn[n + 1]!) n++;
    return n;
  }
}
