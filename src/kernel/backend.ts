/**
 * The chunk backend contract that percpu-vm.c and percpu-km.c each fulfil. The core calls
 * these; they call back into the core for chunk structs and unit geometry.
 */
import type { PcpuAllocInfo } from './alloc-info.ts';
import type { PcpuChunk } from './chunk.ts';
import type { KTask } from './steps.ts';

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
