/**
 * The shape of the first chunk: pcpu_alloc_alloc_info(), pcpu_build_alloc_info() and
 * pcpu_dump_alloc_info(). All of this runs once, at boot, on the boot CPU, before any lock
 * exists.
 */
import {
  LOCAL_DISTANCE,
  NR_CPUS,
  PAGE_SIZE,
  PCPU_MIN_UNIT_SIZE,
  PERCPU_DYNAMIC_EARLY_SIZE,
  PFN_ALIGN,
  roundup,
  rounddown_pow_of_two,
} from './constants.ts';
import { KernelBug } from './bug.ts';
import type { CpuDistanceFn, PcpuAllocInfo, PcpuGroupInfo } from './percpu-internal.ts';

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

/** %p of a kernel address: 16 hex digits, as on a 64-bit kernel. */
export function hexPtr(addr: number): string {
  return addr.toString(16).padStart(16, '0');
}
