/**
 * What the allocator's files share, as mm/percpu-internal.h does for percpu.c and its
 * backends: the first chunk's shape, the chunk backend contract, and the environment the
 * allocator calls out to. Types only, so that the imports among the allocator's files run one
 * way: percpu-internal <- alloc-info <- percpu <- backends and first-chunk <- setup.
 */
import type { PcpuChunk } from './chunk.ts';
import type { KcsanWatch } from './kcsan.ts';
import type { KTask, LockName } from './steps.ts';

export interface PcpuGroupInfo {
  /** units in the group, a multiple of units-per-allocation */
  nr_units: number;
  /** offset of the group's first unit from the first chunk's base */
  base_offset: number;
  /** cpu of each unit, NR_CPUS for an unused unit */
  cpu_map: number[];
}

/** struct pcpu_alloc_info: the first chunk's shape, as pcpu_setup_first_chunk() is given it. */
export interface PcpuAllocInfo {
  static_size: number;
  reserved_size: number;
  dyn_size: number;
  unit_size: number;
  atom_size: number;
  alloc_size: number;
  nr_groups: number;
  groups: PcpuGroupInfo[];
}

/** (cpu, cpu) -> node distance; null means every CPU is local to every other. */
export type CpuDistanceFn = ((from: number, to: number) => number) | null;

/**
 * The chunk backend contract that percpu-vm.c and percpu-km.c each fulfil. The core calls
 * these; they call back into the core for chunk structs and unit geometry.
 */
export interface PcpuBackend {
  readonly name: 'vm' | 'km';
  /**
   * Allocates pages for [off, off + size) in every unit, maps them, and zeroes the area in
   * every unit. Needs pcpu_alloc_mutex; sleeps. Returns 0, or -ENOMEM with nothing leaked.
   */
  pcpu_populate_chunk(chunk: PcpuChunk, off: number, size: number): KTask<number>;
  /** Unmaps and frees the pages of [off, off + size). Needs pcpu_alloc_mutex; sleeps. */
  pcpu_depopulate_chunk(chunk: PcpuChunk, off: number, size: number): KTask<void>;
  /** A new, empty, unlinked chunk, or null. Needs pcpu_alloc_mutex; sleeps. */
  pcpu_create_chunk(): KTask<PcpuChunk | null>;
  /** Releases everything a chunk holds. Needs pcpu_alloc_mutex. */
  pcpu_destroy_chunk(chunk: PcpuChunk): KTask<void>;
  /** The pfn backing a unit address of a non-first chunk, or -1. No lock needed. */
  pcpu_addr_to_pfn(addr: number): number;
  /** Backend limits on the first chunk's shape. Returns 0 or -EINVAL (after printing why). */
  pcpu_verify_alloc_info(ai: PcpuAllocInfo): number;
}

/**
 * What the allocator calls out to, fixed when it is built: the checks that whoever drives its
 * paths wants made. The kernel code never learns which task runs; the environment does (see
 * src/sim/task-env.ts). With neither hook, each call site costs one null check.
 */
export interface PercpuEnv {
  /** lockdep_assert_held(): the running path must hold `lock`; null when nothing checks */
  readonly lockdep_assert_held: ((lock: LockName, where: string) => void) | null;
  /** the data-race detector watching every shared object, and whether paths yield watchpoints; null when none does */
  readonly kcsan: KcsanWatch | null;
  /** the allocator's tracepoints, where a checker holds its history against 2.6.36; null when none listens */
  readonly tracepoint: ((t: PcpuTrace) => void) | null;
}

/**
 * The allocator's tracepoints: each map operation at the point where it happens (under
 * pcpu_lock where the kernel holds it), in the chunk numbers of the event log (-1 for the
 * reserved chunk). A walk is one pass over the slot lists in pcpu_alloc(), ending in an area,
 * a map to extend, a chunk to create, or a failure; the steps after it follow as their own
 * tracepoints.
 */
export type PcpuTrace =
  | (WalkOf & { outcome: 'area'; chunk: number; off: number })
  | (WalkOf & { outcome: 'extend'; chunk: number; to: number })
  | (WalkOf & { outcome: 'create' })
  | (WalkOf & { outcome: 'fail'; reason: string })
  /** pcpu_extend_area_map() swapped (or found) a map of `to` entries */
  | { op: 'extended'; chunk: number; to: number }
  /** the new chunk is linked in */
  | { op: 'created'; chunk: number }
  /** the area is populated; `pages` are the unit pages this population mapped */
  | { op: 'populated'; chunk: number; off: number; size: number; pages: number[] }
  /** the machine refused the allocation in flight (a chunk, a map, a page) */
  | { op: 'alloc-failed'; reason: string }
  /** pcpu_free_area() in free_percpu(): the area is back in the map (in the step that changed it) */
  | { op: 'area-freed'; chunk: number; off: number }
  /** free_percpu() is done with the area, and whether it scheduled reclaim */
  | { op: 'freed'; chunk: number; off: number; reclaim: boolean }
  /** a reclaim (or shutdown) pass took these chunks off the slot lists, in destruction order */
  | { op: 'reclaim'; destroyed: number[]; spareFirst: boolean }
  /** a chunk destroyed, with the unit pages it had populated */
  | { op: 'destroyed'; chunk: number; pages: number[] }
  /** percpu_init_late() is done; `early` are the chunks still on an __initdata map */
  | { op: 'init-late'; early: number[] };

interface WalkOf {
  op: 'walk';
  size: number;
  align: number;
  reserved: boolean;
}
