/**
 * The one place that says where everything lives in the machine's SharedArrayBuffer.
 *
 * Every thread (the allocator actor on the main thread, every CPU worker) attaches to the
 * same buffer. A worker receives nothing but the buffer: it reads the header below to find
 * the regions. Nothing else in the project computes an offset into the buffer by hand.
 *
 *   +--------------------+  0
 *   | header (1 page)    |  Int32 words H_*, Float64 words F_* (addresses above 2^32)
 *   +--------------------+  ptOffset
 *   | vmalloc page table |  Int32 per vmalloc page: pfn + 1, or 0 when not present
 *   +--------------------+  pageInfoOffset
 *   | page info          |  Int32 per pfn: PI_CHUNK (chunk + 1), PI_CPU (owner cpu + 1); 0 is none
 *   +--------------------+  shadowOffset
 *   | shadow             |  Int32 per 2^shadowShift bytes of physical memory: owning allocation tag
 *   +--------------------+  physOffset (page aligned)
 *   | physical memory    |  pfn * PAGE_SIZE from here; absent when contents is false
 *   +--------------------+  total
 *
 * Virtual addresses: the direct map is PAGE_OFFSET + phys; the vmalloc range starts at
 * VMALLOC_START. Both stay below 2^53 so that plain JS numbers hold them exactly.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = ~(PAGE_SIZE - 1);

/** Kernel virtual layout (x86-64 flavoured, scaled to stay below 2^53). */
export const PAGE_OFFSET = 0x0000_1000_0000_0000;
export const VMALLOC_START = 0x0000_2000_0000_0000;
/** The simulated kernel image, where `__per_cpu_start` and `__per_cpu_load` live. */
export const KERNEL_IMAGE_START = 0x0000_0fff_0000_0000;

export const MAX_NUMNODES = 16;
export const MAX_ORDER = 11; // orders 0..10, as MAX_ORDER in 2.6.36

export const MAGIC = 0x70637075; // "pcpu"
export const LAYOUT_VERSION = 1;

/** Int32 word indices in the header. */
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_NR_PAGES = 2;
export const H_NR_NODES = 3;
export const H_VMALLOC_PAGES = 4;
export const H_SHADOW_SHIFT = 5;
export const H_PT_OFFSET = 6; // byte offsets, all below 2^31 * PAGE_SIZE are page indices
export const H_PAGEINFO_OFFSET = 7;
export const H_SHADOW_OFFSET = 8;
export const H_PHYS_OFFSET_PAGES = 9; // in pages: the buffer may exceed 2^31 bytes
export const H_SHADOW_ENTRIES = 10;
/** 1 when the machine keeps no bytes of physical memory (LayoutConfig.contents false) */
export const H_NO_CONTENTS = 11;
export const H_NODE_START_PFN = 16; // MAX_NUMNODES + 1 entries: node n spans [start[n], start[n+1])
/** CPU barrier (src/smp): arrivals in this generation, the generation, the number of parties. */
export const H_BARRIER_COUNT = 64;
export const H_BARRIER_GEN = 65;
export const H_BARRIER_PARTIES = 66;
/** Set to 1 by the machine to make every CPU stop at its next barrier or access check. */
export const H_ABORT = 67;
/** Page-table generation: bumped on every unmap, so cached translations know to go stale. */
export const H_PT_GEN = 68;
/**
 * Shadow epoch: bumped after every change of the shadow's tags, so that a CPU's access check
 * may keep what it validated while the epoch stands (src/check/isolation.ts).
 */
export const H_SHADOW_EPOCH = 69;
/**
 * Allocations the actor has taken and not yet answered: while nonzero the kernel may be
 * zeroing memory that a freed area's shadow still names (pcpu_alloc's memset).
 */
export const H_SHADOW_BUSY = 70;

/** Float64 indices in the header (byte offset = index * 8), after the Int32 words. */
export const F_BASE_BYTE = 2048;
export const F_TLB_FLUSHES = 0;
export const F_CACHE_FLUSHES = 1;

/** Page info: two Int32 per pfn. */
export const PI_WORDS = 2;
export const PI_CHUNK = 0;
export const PI_CPU = 1;

export interface LayoutConfig {
  /** Physical memory in bytes, a multiple of PAGE_SIZE. */
  memoryBytes: number;
  /** Number of NUMA nodes; memory is split evenly, in whole pages. */
  nodes: number;
  /** Size of the vmalloc range in bytes, a multiple of PAGE_SIZE. */
  vmallocBytes: number;
  /** keep a shadow region (for the isolation checker) */
  shadow: boolean;
  /** log2 of the shadow granule in bytes (0: one tag per byte) */
  shadowShift: number;
  /**
   * Whether the buffer holds the bytes of physical memory (default true). Without them the
   * machine has its pages, their page info and their mappings, but nothing to read or write:
   * what a trace replay needs, at any memory size.
   */
  contents?: boolean;
}

export interface Layout extends LayoutConfig {
  nrPages: number;
  vmallocPages: number;
  ptOffset: number;
  pageInfoOffset: number;
  shadowOffset: number;
  shadowEntries: number;
  physOffset: number;
  /** the bytes of physical memory the buffer holds: memoryBytes, or 0 without contents */
  physBytes: number;
  totalBytes: number;
  nodeStartPfn: number[];
}

const roundUpPage = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;

/** Computes the region offsets for a configuration. Pure; validation is the caller's. */
export function computeLayout(cfg: LayoutConfig): Layout {
  const nrPages = cfg.memoryBytes / PAGE_SIZE;
  const vmallocPages = cfg.vmallocBytes / PAGE_SIZE;
  const ptOffset = PAGE_SIZE;
  const pageInfoOffset = roundUpPage(ptOffset + vmallocPages * 4);
  const shadowOffset = roundUpPage(pageInfoOffset + nrPages * PI_WORDS * 4);
  const shadowEntries = cfg.shadow ? Math.floor(cfg.memoryBytes / 2 ** cfg.shadowShift) : 0;
  const physOffset = roundUpPage(shadowOffset + shadowEntries * 4);
  const physBytes = cfg.contents === false ? 0 : cfg.memoryBytes;
  const nodeStartPfn: number[] = [];
  const per = Math.floor(nrPages / cfg.nodes);
  for (let n = 0; n < cfg.nodes; n++) nodeStartPfn.push(n * per);
  nodeStartPfn.push(nrPages);
  return {
    ...cfg,
    nrPages,
    vmallocPages,
    ptOffset,
    pageInfoOffset,
    shadowOffset,
    shadowEntries,
    physOffset,
    physBytes,
    totalBytes: physOffset + physBytes,
    nodeStartPfn,
  };
}

/** Writes the header so that any thread can find the regions from the buffer alone. */
export function writeHeader(sab: SharedArrayBuffer, l: Layout): void {
  const h = new Int32Array(sab, 0, PAGE_SIZE / 4);
  h[H_MAGIC] = MAGIC;
  h[H_VERSION] = LAYOUT_VERSION;
  h[H_NR_PAGES] = l.nrPages;
  h[H_NR_NODES] = l.nodes;
  h[H_VMALLOC_PAGES] = l.vmallocPages;
  h[H_SHADOW_SHIFT] = l.shadowShift;
  h[H_PT_OFFSET] = l.ptOffset;
  h[H_PAGEINFO_OFFSET] = l.pageInfoOffset;
  h[H_SHADOW_OFFSET] = l.shadowOffset;
  h[H_PHYS_OFFSET_PAGES] = l.physOffset / PAGE_SIZE;
  h[H_SHADOW_ENTRIES] = l.shadowEntries;
  h[H_NO_CONTENTS] = l.contents === false ? 1 : 0;
  for (let n = 0; n <= l.nodes; n++) h[H_NODE_START_PFN + n] = l.nodeStartPfn[n]!;
}

/** Reads the layout back from a buffer written by writeHeader (used by workers). */
export function readHeader(sab: SharedArrayBuffer): Layout {
  const h = new Int32Array(sab, 0, PAGE_SIZE / 4);
  if (h[H_MAGIC] !== MAGIC) throw new Error('readHeader: buffer is not a percpu-sim machine');
  if (h[H_VERSION] !== LAYOUT_VERSION)
    throw new Error(`readHeader: layout version ${h[H_VERSION]}, expected ${LAYOUT_VERSION}`);
  const nodes = h[H_NR_NODES]!;
  const nodeStartPfn: number[] = [];
  for (let n = 0; n <= nodes; n++) nodeStartPfn.push(h[H_NODE_START_PFN + n]!);
  const nrPages = h[H_NR_PAGES]!;
  const physOffset = h[H_PHYS_OFFSET_PAGES]! * PAGE_SIZE;
  const contents = h[H_NO_CONTENTS] !== 1;
  const physBytes = contents ? nrPages * PAGE_SIZE : 0;
  return {
    memoryBytes: nrPages * PAGE_SIZE,
    nodes,
    vmallocBytes: h[H_VMALLOC_PAGES]! * PAGE_SIZE,
    shadow: h[H_SHADOW_ENTRIES]! > 0,
    shadowShift: h[H_SHADOW_SHIFT]!,
    nrPages,
    vmallocPages: h[H_VMALLOC_PAGES]!,
    ptOffset: h[H_PT_OFFSET]!,
    pageInfoOffset: h[H_PAGEINFO_OFFSET]!,
    shadowOffset: h[H_SHADOW_OFFSET]!,
    shadowEntries: h[H_SHADOW_ENTRIES]!,
    physOffset,
    physBytes,
    totalBytes: physOffset + physBytes,
    nodeStartPfn,
    contents,
  };
}

/**
 * A hash of the whole physical memory (FNV-1a over its 32-bit words): what a replay of a
 * controlled run must end with.
 */
export function memoryHash(sab: SharedArrayBuffer): string {
  const l = readHeader(sab);
  const w = new Int32Array(sab, l.physOffset, l.physBytes / 4);
  let h = 0x811c9dc5;
  for (let i = 0; i < w.length; i++) {
    const x = w[i]!;
    if (x === 0) {
      h = Math.imul(h ^ 0x5a, 0x01000193);
      continue;
    }
    h = Math.imul(h ^ (x & 0xffff), 0x01000193);
    h = Math.imul(h ^ (x >>> 16), 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
