/**
 * Physical memory: the SharedArrayBuffer itself, its views, and the node of every page frame.
 */
import { MemError, checkInt } from './errors.ts';
import {
  type Layout,
  PAGE_SIZE,
  PAGE_OFFSET,
  MAX_NUMNODES,
  PI_WORDS,
  PI_CHUNK,
  PI_CPU,
  computeLayout,
  readHeader,
  writeHeader,
} from './layout.ts';

export interface PhysConfig {
  memoryBytes?: number;
  nodes?: number;
  vmallocBytes?: number;
  /** keep a shadow region for the isolation checker (default off) */
  shadow?: boolean;
  /** log2 of the shadow granule (default 0: a tag per byte, exact for any area size) */
  shadowShift?: number;
  /** node distance table, nodes x nodes; defaults to 10 local, 20 remote */
  distance?: number[][];
  /**
   * Keep the bytes of physical memory (default true). A trace replay reads no byte of an
   * area, so it has none: memset() of a new area and the first chunk's copy of the static
   * section check the mapping and store nothing, and memory may be up to
   * MAX_MEMORY_NO_CONTENTS, since only the pages in use cost the host anything (layout.ts).
   */
  contents?: boolean;
}

export const DEFAULT_MEMORY = 64 << 20;
export const DEFAULT_VMALLOC = 8 * 1024 ** 3;
/** the page table is 4 bytes per vmalloc page, and regions are addressed below 2^31 bytes */
export const MAX_VMALLOC = 256 * 1024 ** 3;
export const MAX_MEMORY = 4 * 1024 ** 3;
/** a typed array stops at 2^32 elements, so bytes stop at 4 GiB; pages alone go further */
export const MAX_MEMORY_NO_CONTENTS = 64 * 1024 ** 3;
export const LOCAL_DISTANCE = 10;
export const REMOTE_DISTANCE = 20;

/** The machine's physical memory, shared by every thread. */
export class PhysMem {
  readonly layout: Layout;
  readonly sab: SharedArrayBuffer;
  /** physical memory as bytes / 32-bit words, index = physical address (>> 2) */
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly dv: DataView;
  /** two Int32 per pfn: PI_CHUNK, PI_CPU */
  readonly pageInfo: Int32Array;
  readonly distance: number[][];

  private constructor(sab: SharedArrayBuffer, layout: Layout, distance: number[][]) {
    this.sab = sab;
    this.layout = layout;
    this.u8 = new Uint8Array(sab, layout.physOffset, layout.physBytes);
    this.i32 = new Int32Array(sab, layout.physOffset, layout.physBytes / 4);
    this.dv = new DataView(sab, layout.physOffset, layout.physBytes);
    this.pageInfo = new Int32Array(sab, layout.pageInfoOffset, layout.nrPages * PI_WORDS);
    this.distance = distance;
    this.zonelists = distance.map((row) => Object.freeze([...row.keys()].sort((a, b) => row[a]! - row[b]! || a - b)));
  }

  /** fallbackOrder() of every node, worked out once: the page allocator asks on every call */
  private readonly zonelists: readonly (readonly number[])[];

  /** Builds a new machine's memory. Refuses sizes it cannot lay out, changing nothing. */
  static create(cfg: PhysConfig = {}): PhysMem {
    const fn = 'PhysMem.create';
    const contents = cfg.contents ?? true;
    const memoryBytes = checkInt(
      fn,
      'memoryBytes',
      cfg.memoryBytes ?? DEFAULT_MEMORY,
      1 << 20,
      contents ? MAX_MEMORY : MAX_MEMORY_NO_CONTENTS,
    );
    if (memoryBytes % PAGE_SIZE) throw new MemError('EINVAL', fn, 'memoryBytes', `must be a multiple of ${PAGE_SIZE}`);
    const nodes = checkInt(fn, 'nodes', cfg.nodes ?? 1, 1, MAX_NUMNODES);
    if (memoryBytes / PAGE_SIZE / nodes < 256)
      throw new MemError('EINVAL', fn, 'memoryBytes', `gives under 256 pages per node with ${nodes} nodes`);
    const vmallocBytes = checkInt(fn, 'vmallocBytes', cfg.vmallocBytes ?? DEFAULT_VMALLOC, 1 << 20, MAX_VMALLOC);
    if (vmallocBytes % PAGE_SIZE)
      throw new MemError('EINVAL', fn, 'vmallocBytes', `must be a multiple of ${PAGE_SIZE}`);
    const shadowShift = checkInt(fn, 'shadowShift', cfg.shadowShift ?? 0, 0, 12);
    const shadow = cfg.shadow ?? false;
    const distance = cfg.distance ?? defaultDistance(nodes);
    if (distance.length !== nodes || distance.some((r) => r.length !== nodes))
      throw new MemError('EINVAL', fn, 'distance', `must be a ${nodes}x${nodes} table`);
    distance.forEach((row, a) =>
      row.forEach((d, b) => {
        checkInt(fn, `distance[${a}][${b}]`, d, LOCAL_DISTANCE, 255);
        if (a === b && d !== LOCAL_DISTANCE)
          throw new MemError('EINVAL', fn, `distance[${a}][${b}]`, `must be ${LOCAL_DISTANCE} (local)`);
      }),
    );
    const layout = computeLayout({ memoryBytes, nodes, vmallocBytes, shadow, shadowShift, contents });
    const sab = new SharedArrayBuffer(layout.totalBytes);
    writeHeader(sab, layout);
    // page info is kept plus one, so that the zeroed buffer says "none" for every page: the
    // host backs only the pages of it that are used
    return new PhysMem(sab, layout, distance);
  }

  /** Attaches to a buffer made by create() (in a worker). Distances are not needed there. */
  static attach(sab: SharedArrayBuffer): PhysMem {
    const layout = readHeader(sab);
    return new PhysMem(sab, layout, defaultDistance(layout.nodes));
  }

  get nrPages(): number {
    return this.layout.nrPages;
  }

  get nodes(): number {
    return this.layout.nodes;
  }

  nodeStartPfn(node: number): number {
    return this.layout.nodeStartPfn[node]!;
  }

  nodeEndPfn(node: number): number {
    return this.layout.nodeStartPfn[node + 1]!;
  }

  /** The node that holds pfn (pfn_to_nid). */
  pfnToNid(pfn: number): number {
    checkInt('pfn_to_nid', 'pfn', pfn, 0, this.nrPages - 1);
    const starts = this.layout.nodeStartPfn;
    let n = 0;
    while (pfn >= starts[n + 1]!) n++;
    return n;
  }

  /** Nodes ordered by distance from `node` (itself first), ties by node id: the zonelist. */
  fallbackOrder(node: number): readonly number[] {
    return this.zonelists[node]!;
  }

  /** __va(): the direct-map address of a physical address. */
  va(phys: number): number {
    return PAGE_OFFSET + phys;
  }

  /** __pa(): the physical address of a direct-map address. */
  pa(va: number): number {
    const phys = va - PAGE_OFFSET;
    if (phys < 0 || phys >= this.layout.memoryBytes)
      throw new MemError('EFAULT', '__pa', 'addr', `0x${va.toString(16)} is not in the direct map`);
    return phys;
  }

  /** The chunk a page belongs to, or -1. */
  pageChunk(pfn: number): number {
    return this.pageInfo[pfn * PI_WORDS + PI_CHUNK]! - 1;
  }

  /** pcpu_set_page_chunk(): records which chunk a page belongs to (-1 for none). */
  setPageChunk(pfn: number, chunk: number): void {
    this.pageInfo[pfn * PI_WORDS + PI_CHUNK] = chunk + 1;
  }

  /** The CPU whose unit this page backs, or -1. */
  pageCpu(pfn: number): number {
    return this.pageInfo[pfn * PI_WORDS + PI_CPU]! - 1;
  }

  setPageCpu(pfn: number, cpu: number): void {
    this.pageInfo[pfn * PI_WORDS + PI_CPU] = cpu + 1;
  }
}

export function defaultDistance(nodes: number): number[][] {
  return Array.from({ length: nodes }, (_, a) =>
    Array.from({ length: nodes }, (_, b) => (a === b ? LOCAL_DISTANCE : REMOTE_DISTANCE)),
  );
}
