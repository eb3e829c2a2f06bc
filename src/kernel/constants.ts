/** Constants of mm/percpu.c and include/linux/percpu.h as of 2.6.36. */
import { PAGE_SIZE, PAGE_SHIFT } from '../mem/layout.ts';

export { PAGE_SIZE, PAGE_SHIFT };

/** chunks are slotted by fls(free_size) - PCPU_SLOT_BASE_SHIFT + 2 */
export const PCPU_SLOT_BASE_SHIFT = 5;
/** a new chunk's area map starts with this many entries and doubles */
export const PCPU_DFL_MAP_ALLOC = 16;
/** the smallest unit, and the largest single allocation */
export const PCPU_MIN_UNIT_SIZE = 64 << 10;
/** entries of the __initdata maps that serve allocations before slab is online */
export const PERCPU_DYNAMIC_EARLY_SLOTS = 128;
/** the dynamic area of the first chunk is at least this large, for early allocations */
export const PERCPU_DYNAMIC_EARLY_SIZE = 12 << 10;
/** the reserved area for module static percpu variables (CONFIG_MODULES) */
export const PERCPU_MODULE_RESERVE = 8 << 10;
/** the dynamic area the generic setup asks for (64-bit) */
export const PERCPU_DYNAMIC_RESERVE = 20 << 10;
/** node_distance() of a node to itself */
export const LOCAL_DISTANCE = 10;
/** CONFIG_NR_CPUS: marks an unused unit in a group's cpu_map */
export const NR_CPUS = 4096;
/** sizeof(int): the "small head or tail" threshold of pcpu_alloc_area() */
export const SIZEOF_INT = 4;
/** allocation failures print a warning this many times, then stay quiet */
export const PCPU_WARN_LIMIT = 10;

/** PFN_ALIGN(x): x rounded up to a page */
export const PFN_ALIGN = (x: number): number => Math.ceil(x / PAGE_SIZE) * PAGE_SIZE;
export const PFN_UP = (x: number): number => Math.ceil(x / PAGE_SIZE);
export const PFN_DOWN = (x: number): number => Math.floor(x / PAGE_SIZE);

/** fls(): the 1-based index of the highest set bit, 0 for 0 */
export const fls = (x: number): number => (x === 0 ? 0 : 32 - Math.clz32(x));

export const roundup = (x: number, y: number): number => Math.ceil(x / y) * y;
export const isPowerOf2 = (x: number): boolean => x > 0 && Number.isInteger(x) && (x & (x - 1)) === 0;
/** order_base_2(n): ceil(log2(n)) */
export const order_base_2 = (n: number): number => (n <= 1 ? 0 : 32 - Math.clz32(n - 1));
export const roundup_pow_of_two = (n: number): number => 2 ** order_base_2(n);
export const rounddown_pow_of_two = (n: number): number => 2 ** (fls(n) - 1);
