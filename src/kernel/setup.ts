/**
 * start_kernel()'s part in the percpu story: setup_per_cpu_areas() on the boot CPU, then
 * mm_init() (the page allocator and slab come up), then percpu_init_late().
 */
import type { Machine } from '../mem/machine.ts';
import { PAGE_SIZE } from './constants.ts';
import { PERCPU_DYNAMIC_RESERVE, PERCPU_MODULE_RESERVE } from './constants.ts';
import { KernelBug } from './bug.ts';
import { MemError } from '../mem/errors.ts';
import { pcpu_embed_first_chunk, pcpu_page_first_chunk } from './first-chunk.ts';
import { type KernelImage, makeKernelImage } from './image.ts';
import type { KernelFault } from './mutants.ts';
import { type KernelLog, Percpu } from './percpu.ts';
import type { CpuDistanceFn, PcpuBackend, PercpuEnv } from './percpu-internal.ts';
import { PercpuKm } from './percpu-km.ts';
import { PercpuVm } from './percpu-vm.ts';

/**
 * Which first-chunk builder setup_per_cpu_areas() uses (the percpu_alloc= boot parameter):
 * auto embeds and falls back to pages when embedding fails, as x86 does; embed and page
 * force one (embed as an architecture without the page first chunk: it warns and embeds).
 */
export type FirstChunkKind = 'auto' | 'embed' | 'page';
export const FIRST_CHUNK_KINDS: readonly FirstChunkKind[] = ['auto', 'embed', 'page'];
export type BackendKind = 'vm' | 'km';

export interface PercpuSetup {
  /** size of the kernel image's static percpu section */
  static_size?: number;
  reserved_size?: number;
  dyn_size?: number;
  atom_size?: number;
  fc?: FirstChunkKind;
  backend?: BackendKind;
  /** group CPUs by node distance (sparse NUMA groups); off means one group, as a NULL cpu_distance_fn */
  numa_groups?: boolean;
  image?: KernelImage;
  log?: KernelLog;
  /** bugs to build in, for the checkers to find (see mutants.ts) */
  mutants?: readonly KernelFault[];
  /** what the allocator calls out to (lockdep, the race detector); by default nothing */
  env?: PercpuEnv;
}

/** Builds the chunk backend of a kind for an allocator. */
export function makeBackend(kind: BackendKind): (pc: Percpu) => PcpuBackend {
  return kind === 'km' ? (pc) => new PercpuKm(pc) : (pc) => new PercpuVm(pc);
}

/** The static section of a small x86-64 kernel, in bytes. */
export const DEFAULT_STATIC_SIZE = 20000;

/**
 * setup_per_cpu_areas(): builds the first chunk with the embed or page allocator, or (auto,
 * the default) embeds and on failure warns and builds the page first chunk, as x86 does; then
 * fills __per_cpu_offset[]. percpu-km has no page first chunk, so auto only embeds there.
 * Boot only, on the boot CPU. Returns the allocator; a bad configuration throws KernelBug.
 */
export function setup_per_cpu_areas(machine: Machine, cfg: PercpuSetup = {}): Percpu {
  const image = cfg.image ?? makeKernelImage(cfg.static_size ?? DEFAULT_STATIC_SIZE);
  const backend = cfg.backend ?? 'vm';
  const pc = new Percpu({
    machine,
    image,
    backend: makeBackend(backend),
    ...(cfg.log ? { log: cfg.log } : {}),
    mutants: cfg.mutants ?? [],
    ...(cfg.env ? { env: cfg.env } : {}),
  });
  const fc = cfg.fc ?? 'auto';
  if (fc === 'page' && backend === 'km')
    throw new KernelBug('BAD_STATE', 'contiguous percpu allocation (km) is incompatible with the paged first chunk');

  // pcpu_fc_alloc/free: boot memory near the CPU's node, as x86's setup_percpu.c does
  const alloc_fn = (cpu: number, size: number, align: number): number => {
    // the kernel's pcpu_fc_alloc returns NULL when boot memory cannot give it, never more
    let phys: number;
    try {
      phys = machine.memblock.alloc(size, align, machine.cpuToNode(cpu), true);
    } catch (e) {
      if (e instanceof MemError) return 0;
      throw e;
    }
    return phys < 0 ? 0 : machine.mem.va(phys);
  };
  const free_fn = (ptr: number, size: number): void => machine.memblock.freeRange(machine.mem.pa(ptr), size);
  const distance: CpuDistanceFn = cfg.numa_groups ? (a, b) => machine.cpuDistance(a, b) : null;

  const reserved = cfg.reserved_size ?? PERCPU_MODULE_RESERVE;
  const fallback = fc === 'auto' && backend === 'vm';
  let rc = -22;
  if (fc !== 'page') {
    rc = pcpu_embed_first_chunk(
      pc,
      reserved,
      cfg.dyn_size ?? PERCPU_DYNAMIC_RESERVE,
      cfg.atom_size ?? PAGE_SIZE,
      distance,
      alloc_fn,
      free_fn,
      fallback,
    );
    // x86's message carries the name of the percpu_alloc= choice, "auto" by default
    if (rc < 0 && fallback) pc.printk(`setup_percpu: ${fc} allocator failed (${rc}), falling back to page size`);
  }
  if (rc < 0 && (fc === 'page' || fallback)) rc = pcpu_page_first_chunk(pc, reserved, alloc_fn, free_fn);
  if (rc < 0) {
    const why =
      rc === -12
        ? `: boot memory ran out (${machine.cpus} CPUs, ${machine.mem.layout.memoryBytes / 2 ** 20} MiB of memory over ${machine.mem.nodes} node(s)); give the machine more memory`
        : rc === -22
          ? ': the first chunk does not fit this backend or atom size'
          : '';
    throw new KernelBug('BAD_STATE', `Failed to initialize percpu areas (${fc} first chunk: error ${rc})${why}.`);
  }
  pc.pcpu_setup_offsets();
  // record whose unit each first-chunk page backs, as percpu-vm does for the pages it maps
  for (let cpu = 0; cpu < machine.cpus; cpu++)
    for (let p = 0; p < pc.pcpu_unit_pages; p++) {
      const phys = machine.access.translate(pc.pcpu_chunk_addr(pc.pcpu_first_chunk!, cpu, p));
      if (phys >= 0) machine.mem.setPageCpu(phys / 4096, cpu);
    }
  return pc;
}

/** mm_init(): boot memory goes to the page allocator and slab comes online. */
export function mm_init(machine: Machine, pc: Percpu): void {
  machine.mmInit();
  pc.slab_is_online();
}
