/**
 * The two first-chunk builders, pcpu_embed_first_chunk() and pcpu_page_first_chunk(): each
 * takes boot memory for the units, copies the static section into them and hands the shape to
 * pcpu_setup_first_chunk(). Boot only, on the boot CPU, before any lock exists.
 */
import { NR_CPUS, PAGE_SIZE, PFN_DOWN } from './constants.ts';
import { KernelBug } from './bug.ts';
import { hexPtr, pcpu_build_alloc_info } from './alloc-info.ts';
import type { CpuDistanceFn } from './percpu-internal.ts';
import type { Percpu } from './percpu.ts';

/** Allocates `size` bytes aligned to `align` near `cpu` for the first chunk; 0 on failure. */
export type PcpuFcAllocFn = (cpu: number, size: number, align: number) => number;
/** Gives back part of what PcpuFcAllocFn returned. */
export type PcpuFcFreeFn = (ptr: number, size: number) => void;

/**
 * pcpu_embed_first_chunk(): the first chunk in boot memory, used through the direct map.
 * Every group is allocated first (freeing early could let later groups overlap earlier
 * ones); then the static section is copied into every used unit and unused units and unit
 * tails are given back. Groups spread over more than three quarters of the vmalloc space are
 * warned about; with `page_fallback` (an architecture that has the page first chunk, as x86
 * does) that is -EINVAL, and what the units hold stays allocated, as 2.6.36 leaves it. Boot
 * only. Returns 0, -ENOMEM or -EINVAL.
 */
export function pcpu_embed_first_chunk(
  pc: Percpu,
  reserved_size: number,
  dyn_size: number,
  atom_size: number,
  cpu_distance_fn: CpuDistanceFn,
  alloc_fn: PcpuFcAllocFn,
  free_fn: PcpuFcFreeFn,
  page_fallback = false,
): number {
  const ai = pcpu_build_alloc_info(
    pc.nr_cpu_ids,
    pc.image.static_size,
    reserved_size,
    dyn_size,
    atom_size,
    cpu_distance_fn,
  );
  const size_sum = ai.static_size + ai.reserved_size + ai.dyn_size;
  const areas: number[] = [];
  let base = Number.MAX_SAFE_INTEGER;

  for (let group = 0; group < ai.nr_groups; group++) {
    const gi = ai.groups[group]!;
    let cpu = NR_CPUS;
    for (let i = 0; i < gi.nr_units && cpu === NR_CPUS; i++) cpu = gi.cpu_map[i]!;
    if (cpu === NR_CPUS) throw new KernelBug('BUG_ON', 'kernel BUG: BUG_ON(cpu == NR_CPUS)', 'cpu == NR_CPUS');
    const ptr = alloc_fn(cpu, gi.nr_units * ai.unit_size, atom_size);
    if (!ptr) {
      for (let g = 0; g < group; g++) free_fn(areas[g]!, ai.groups[g]!.nr_units * ai.unit_size);
      pc.printk(`PERCPU: failed to allocate ${gi.nr_units * ai.unit_size} bytes for group ${group}`);
      return -12;
    }
    areas[group] = ptr;
    base = Math.min(ptr, base);
  }

  for (let group = 0; group < ai.nr_groups; group++) {
    const gi = ai.groups[group]!;
    let ptr = areas[group]!;
    for (let i = 0; i < gi.nr_units; i++, ptr += ai.unit_size) {
      if (gi.cpu_map[i] === NR_CPUS) {
        free_fn(ptr, ai.unit_size); // unused unit
        continue;
      }
      pc.machine.access.writeBytes(ptr, pc.image.load);
      free_fn(ptr + size_sum, ai.unit_size - size_sum);
    }
  }

  let max_distance = 0;
  for (let group = 0; group < ai.nr_groups; group++) {
    ai.groups[group]!.base_offset = areas[group]! - base;
    max_distance = Math.max(max_distance, ai.groups[group]!.base_offset);
  }
  max_distance += ai.unit_size;
  const vmalloc_size = pc.machine.vm.end - pc.machine.vm.start;
  if (max_distance > Math.floor((vmalloc_size * 3) / 4)) {
    pc.printk(
      `PERCPU: max_distance=0x${max_distance.toString(16)} too large for vmalloc space 0x${vmalloc_size.toString(16)}`,
    );
    if (page_fallback) return -22;
  }

  pc.printk(
    `PERCPU: Embedded ${PFN_DOWN(size_sum)} pages/cpu @${hexPtr(base)} s${ai.static_size} r${ai.reserved_size} d${ai.dyn_size} u${ai.unit_size}`,
  );
  return pc.pcpu_setup_first_chunk(ai, base);
}

/**
 * pcpu_page_first_chunk(): the first chunk page by page, each page from its CPU's node,
 * mapped into a vmalloc area registered at boot. Boot only. Returns 0 or -ENOMEM.
 */
export function pcpu_page_first_chunk(
  pc: Percpu,
  reserved_size: number,
  alloc_fn: PcpuFcAllocFn,
  free_fn: PcpuFcFreeFn,
): number {
  const psize_str = `${PAGE_SIZE >> 10}K`;
  const ai = pcpu_build_alloc_info(pc.nr_cpu_ids, pc.image.static_size, reserved_size, 0, PAGE_SIZE, null);
  if (ai.nr_groups !== 1 || ai.groups[0]!.nr_units !== pc.nr_cpu_ids)
    throw new KernelBug('BUG_ON', 'kernel BUG: BUG_ON(ai->nr_groups != 1)', 'ai->nr_groups != 1');
  const unit_pages = ai.unit_size / PAGE_SIZE;
  const pages: number[] = [];
  for (let unit = 0; unit < pc.nr_cpu_ids; unit++) {
    const cpu = ai.groups[0]!.cpu_map[unit]!;
    for (let i = 0; i < unit_pages; i++) {
      const ptr = alloc_fn(cpu, PAGE_SIZE, PAGE_SIZE);
      if (!ptr) {
        pc.printk(`PERCPU: failed to allocate ${psize_str} page for cpu${cpu}`);
        for (const p of pages) free_fn(p, PAGE_SIZE);
        return -12;
      }
      pages.push(ptr);
    }
  }
  const vm = pc.machine.vm.getVmArea(pc.nr_cpu_ids * ai.unit_size, 'pcpu_page_first_chunk');
  if (!vm)
    throw new KernelBug('BUG_ON', 'kernel BUG: vm_area_register_early() found no space', 'vm_area_register_early');
  for (let unit = 0; unit < pc.nr_cpu_ids; unit++) {
    const unit_addr = vm.addr + unit * ai.unit_size;
    const pfns = pages.slice(unit * unit_pages, (unit + 1) * unit_pages).map((va) => pc.machine.mem.pa(va) / PAGE_SIZE);
    pc.machine.vm.mapPages(unit_addr, pfns);
    pc.machine.access.writeBytes(unit_addr, pc.image.load);
  }
  pc.printk(
    `PERCPU: ${unit_pages} ${psize_str} pages/cpu @${hexPtr(vm.addr)} s${ai.static_size} r${ai.reserved_size} d${ai.dyn_size}`,
  );
  return pc.pcpu_setup_first_chunk(ai, vm.addr);
}
