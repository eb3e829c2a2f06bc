/**
 * The allocator's shared objects as a data-race detector sees them, in the manner of the
 * kernel's KCSAN: every kernel path reports each read and write of a shared object (in the
 * spirit of READ_ONCE()/WRITE_ONCE()) to whoever watches. The kernel code never says which
 * lock it thinks it holds; the watcher learns that from the scheduler.
 *
 * Nobody watches during replay, so a report there costs one null check.
 */
import type { PcpuChunk } from './chunk.ts';

/**
 * What can be touched:
 *  - map:       a chunk's area map with map_used, map_alloc, free_size and contig_hint
 *  - slots:     the pcpu_slot lists and the list links of the chunks on them
 *  - index:     a chunk's entry in the chunk index (the page -> chunk link resolves through it)
 *  - populated: a chunk's populated bitmap
 *  - vm:        a chunk's vm areas (percpu-vm) or page block (percpu-km)
 *  - page:      the page-table entries and page -> chunk links of one page index of a chunk,
 *               in every unit (`index` names the page)
 *  - scratch:   percpu-vm's shared scratch page array and bitmap (no chunk)
 */
export type SharedKind = 'map' | 'slots' | 'index' | 'populated' | 'vm' | 'page' | 'scratch';

/** 'free' is the end of an object's life: it conflicts with every earlier access. */
export type AccessMode = 'read' | 'write' | 'free';

export interface KcsanWatch {
  /** `chunk` is null for the global objects (slots, scratch); `index` is -1 unless kind is 'page'. */
  access(kind: SharedKind, chunk: PcpuChunk | null, index: number, mode: AccessMode, where: string): void;
  /** The chunk's struct, map, bitmap, vm areas and pages all end here. */
  destroyed(chunk: PcpuChunk, where: string): void;
  /** Yield a watchpoint before touching shared objects, so that other tasks can run there. */
  readonly delay: boolean;
}

/**
 * One access of a kernel path to a shared object, as a watcher receives it once whoever runs
 * the kernel paths (src/sim/run-queue.ts) has stamped it with the running task.
 */
export interface KernelAccess {
  task: number;
  cpu: number;
  tick: number;
  kind: SharedKind;
  /** null for the global objects; the chunk struct otherwise */
  chunk: PcpuChunk | null;
  index: number;
  mode: AccessMode;
  where: string;
}

/** The identity of a shared object across accesses: a chunk's objects by its uid (never 0, never reused), the global ones under 0. */
export function sharedObjectKey(kind: SharedKind, chunk: PcpuChunk | null, index: number): string {
  return `${kind}:${chunk ? chunk.uid : 0}:${index}`;
}
