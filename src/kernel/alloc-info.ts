/**
 * The shape of the first chunk: pcpu_build_alloc_info(), pcpu_dump_alloc_info(), and the two
 * first-chunk builders, pcpu_embed_first_chunk() and pcpu_page_first_chunk(). All of this
 * runs once, at boot, on the boot CPU, before any lock exists.
 */
import {
  LOCAL_DISTANCE,
  NR_CPUS,
  PAGE_SIZE,
  PCPU_MIN_UNIT_SIZE,
  PERCPU_DYNAMIC_EARLY_SIZE,
  PFN_ALIGN,
  PFN_DOWN,
  roundup,
  rounddown_pow_of_two,
} from './constants.ts';
import { KernelBug } from './bug.ts';
import type { Percpu } from './percpu.ts';

export interface PcpuGroupInfo {
  /** units in the group, a multiple of units-per-allocation */
  nr_units: number;
  /** offset of the group's first unit from the first chunk's base */
  base_offset: number;
  /** cpu of each unit, NR_CPUS for an unused unit */
  cpu_map: number[];
}

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

/** pcpu_alloc_alloc_info(): room for nr_groups groups and nr_units units, all unused. */
export function pcpu_alloc_alloc_info(nr_groups: number, nr_units: number): PcpuAllocInfo {
  const groups: PcpuGroupInfo[] = [];
  for (let g = 0; g < nr_groups; g++) groups.push({ nr_units: 0, base_offset: 0, cpu_map: [] });
  if (nr_groups > 0) groups[0]!.cpu_map = new Array<number>(nr_units).fill(NR_CPUS);
  return {
    static_size: 0,
    reserved_size: 0,
    dyn_size: 0,
    unit_size: 0,
    atom_size: 0,
    alloc_size: 0,
    nr_groups,
    groups,
  };
}

/**
 * pcpu_build_alloc_info(): groups CPUs that are within LOCAL_DISTANCE of each other both
 * ways, then picks the number of units per allocation (upa) that wastes at most a third of
 * the CPUs' worth of units and uses the fewest allocations. Boot only, no locks.
 * Returns the alloc info; group base offsets assume the groups sit back to back.
 */
export function pcpu_build_alloc_info(
  nr_cpus: number,
  static_size: number,
  reserved_size: number,
  dyn_size: number,
  atom_size: number,
  cpu_distance_fn: CpuDistanceFn,
): PcpuAllocInfo {
  const group_map = new Array<number>(nr_cpus).fill(0);
  const group_cnt = new Array<number>(nr_cpus).fill(0);
  let nr_groups = 1;

  // the dynamic area must be able to serve the early allocations
  const size_sum = PFN_ALIGN(static_size + reserved_size + Math.max(dyn_size, PERCPU_DYNAMIC_EARLY_SIZE));
  dyn_size = size_sum - static_size - reserved_size;

  // the smallest atom multiple that holds page aligned units of at least min_unit_size
  const min_unit_size = Math.max(size_sum, PCPU_MIN_UNIT_SIZE);
  const alloc_size = roundup(min_unit_size, atom_size);
  let upa = Math.floor(alloc_size / min_unit_size);
  while (alloc_size % upa || (alloc_size / upa) % PAGE_SIZE) upa--;
  const max_upa = upa;

  // group CPUs by proximity: a CPU joins the first group none of whose members is remote
  for (let cpu = 0; cpu < nr_cpus; cpu++) {
    let group = 0;
    for (let tcpu = 0; tcpu < cpu; tcpu++) {
      if (
        group_map[tcpu] === group &&
        cpu_distance_fn &&
        (cpu_distance_fn(cpu, tcpu) > LOCAL_DISTANCE || cpu_distance_fn(tcpu, cpu) > LOCAL_DISTANCE)
      ) {
        group++;
        nr_groups = Math.max(nr_groups, group + 1);
        tcpu = -1; // next_group: rescan from the first CPU
      }
    }
    group_map[cpu] = group;
    group_cnt[group]!++;
  }

  // grow the unit until usage passes 75%, then as far as it costs no more allocations
  let last_allocs = Number.MAX_SAFE_INTEGER;
  let best_upa = 1;
  for (upa = max_upa; upa; upa--) {
    let allocs = 0;
    let wasted = 0;
    if (alloc_size % upa || (alloc_size / upa) % PAGE_SIZE) continue;
    for (let group = 0; group < nr_groups; group++) {
      const this_allocs = Math.ceil(group_cnt[group]! / upa);
      allocs += this_allocs;
      wasted += this_allocs * upa - group_cnt[group]!;
    }
    // more than a third wasted is refused; upa == 1 wastes nothing and always passes
    if (wasted > Math.floor(nr_cpus / 3)) continue;
    if (allocs > last_allocs) break;
    last_allocs = allocs;
    best_upa = upa;
  }
  upa = best_upa;

  let nr_units = 0;
  for (let group = 0; group < nr_groups; group++) nr_units += roundup(group_cnt[group]!, upa);

  const ai = pcpu_alloc_alloc_info(nr_groups, nr_units);
  const cpu_map = ai.groups[0]!.cpu_map;
  let at = 0;
  for (let group = 0; group < nr_groups; group++) {
    const n = roundup(group_cnt[group]!, upa);
    // each group sees its own window of the one cpu_map array
    ai.groups[group]!.cpu_map = cpu_map.slice(at, at + n);
    at += n;
  }

  ai.static_size = static_size;
  ai.reserved_size = reserved_size;
  ai.dyn_size = dyn_size;
  ai.unit_size = alloc_size / upa;
  ai.atom_size = atom_size;
  ai.alloc_size = alloc_size;

  let unit = 0;
  for (let group = 0; group < nr_groups && group_cnt[group]; group++) {
    const gi = ai.groups[group]!;
    // back to back for now; the first chunk builder records where each group really is
    gi.base_offset = unit * ai.unit_size;
    for (let cpu = 0; cpu < nr_cpus; cpu++) if (group_map[cpu] === group) gi.cpu_map[gi.nr_units++] = cpu;
    gi.nr_units = roundup(gi.nr_units, upa);
    unit += gi.nr_units;
  }
  if (unit !== nr_units) throw new KernelBug('BUG_ON', 'kernel BUG: BUG_ON(unit != nr_units)', 'unit != nr_units');
  return ai;
}

/**
 * pcpu_dump_alloc_info(): the "pcpu-alloc:" lines, exactly as printk emits them (each group
 * line keeps its trailing space). `lvl` is the printk level prefix, usually "".
 */
export function pcpu_dump_alloc_info(ai: PcpuAllocInfo, nr_possible_cpus: number, lvl = ''): string[] {
  let group_width = 1;
  let cpu_width = 1;
  for (let v = ai.nr_groups; (v = Math.floor(v / 10));) group_width++;
  for (let v = nr_possible_cpus; (v = Math.floor(v / 10));) cpu_width++;
  const empty_str = '--------'.slice(0, Math.min(cpu_width, 8));

  const upa = Math.max(1, Math.floor(ai.alloc_size / ai.unit_size));
  const width = upa * (cpu_width + 1) + group_width + 3;
  const apl = rounddown_pow_of_two(Math.max(Math.floor(60 / width), 1));

  const lines: string[] = [
    `${lvl}pcpu-alloc: s${ai.static_size} r${ai.reserved_size} d${ai.dyn_size} u${ai.unit_size} alloc=${ai.alloc_size / ai.atom_size}*${ai.atom_size}`,
  ];
  let cur: string | null = null;
  let alloc = 0;
  let alloc_end = 0;
  for (let group = 0; group < ai.nr_groups; group++) {
    const gi = ai.groups[group]!;
    let unit = 0;
    let unit_end = 0;
    if (gi.nr_units % upa)
      throw new KernelBug('BUG_ON', 'kernel BUG: BUG_ON(gi->nr_units % upa)', 'gi->nr_units % upa');
    for (alloc_end += gi.nr_units / upa; alloc < alloc_end; alloc++) {
      if (!(alloc % apl)) {
        if (cur !== null) lines.push(cur);
        cur = `${lvl}pcpu-alloc: `;
      }
      cur += `[${String(group).padStart(group_width, '0')}] `;
      for (unit_end += upa; unit < unit_end; unit++) {
        const cpu = gi.cpu_map[unit]!;
        cur += cpu !== NR_CPUS ? `${String(cpu).padStart(cpu_width, '0')} ` : `${empty_str} `;
      }
    }
  }
  if (cur !== null) lines.push(cur);
  return lines;
}

/** Allocates `size` bytes aligned to `align` near `cpu` for the first chunk; 0 on failure. */
export type PcpuFcAllocFn = (cpu: number, size: number, align: number) => number;
/** Gives back part of what PcpuFcAllocFn returned. */
export type PcpuFcFreeFn = (ptr: number, size: number) => void;

/**
 * pcpu_embed_first_chunk(): the first chunk in boot memory, used through the direct map.
 * Every group is allocated first (freeing early could let later groups overlap earlier
 * ones); then the static section is copied into every used unit and unused units and unit
 * tails are given back. Boot only. Returns 0 or -ENOMEM.
 */
export function pcpu_embed_first_chunk(
  pc: Percpu,
  reserved_size: number,
  dyn_size: number,
  atom_size: number,
  cpu_distance_fn: CpuDistanceFn,
  alloc_fn: PcpuFcAllocFn,
  free_fn: PcpuFcFreeFn,
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
  if (max_distance > Math.floor((vmalloc_size * 3) / 4))
    pc.printk(
      `PERCPU: max_distance=0x${max_distance.toString(16)} too large for vmalloc space 0x${vmalloc_size.toString(16)}`,
    );

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

/** %p of a kernel address: 16 hex digits, as on a 64-bit kernel. */
export function hexPtr(addr: number): string {
  return addr.toString(16).padStart(16, '0');
}
