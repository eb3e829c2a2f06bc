/**
 * The first chunk as 2.6.36 shapes it at boot: pcpu_build_alloc_info() (CPUs grouped by
 * NUMA distance, the unit size from the atom), the "pcpu-alloc:" dump, the embedding and
 * page first-chunk builders and their "PERCPU:" lines, ending in the Layout the allocator
 * model runs on. Where boot memory puts each group is memblock's answer: an input here.
 */
import { type Layout, PAGE_SIZE, PCPU_MIN_UNIT_SIZE, PERCPU_DYNAMIC_EARLY_SIZE, PercpuModel } from './percpu.ts';

/** node_distance() of a node to itself: CPUs further apart go to different groups */
export const LOCAL_DISTANCE = 10;

export interface GroupInfo {
  nrUnits: number;
  /** offset of the group's first unit from the first chunk's base */
  baseOffset: number;
  /** the CPU of each unit, null for a unit no CPU uses */
  cpuMap: (number | null)[];
}

export interface AllocInfo {
  staticSize: number;
  reservedSize: number;
  dynSize: number;
  unitSize: number;
  atomSize: number;
  allocSize: number;
  groups: GroupInfo[];
}

/** (cpu, cpu) -> distance; null is a NULL cpu_distance_fn: one group. */
export type Distance = ((from: number, to: number) => number) | null;

/**
 * What a machine or a later kernel changes in pcpu_build_alloc_info(): the page size (8 KiB on
 * sparc64, 16 or 64 KiB on ia64) and PCPU_MIN_UNIT_SIZE (32 KiB from 2.6.37). 2.6.36 on the
 * simulated machine is 4 KiB and 64 KiB.
 */
export interface AllocRules {
  pageSize?: number;
  minUnitSize?: number;
}

const roundUp = (x: number, y: number): number => Math.ceil(x / y) * y;
const hexPtr = (addr: number): string => addr.toString(16).padStart(16, '0');

/**
 * pcpu_build_alloc_info(). The dynamic area is at least PERCPU_DYNAMIC_EARLY_SIZE and the
 * three areas end on a page; a unit is at least PCPU_MIN_UNIT_SIZE. An allocation is a
 * multiple of the atom holding upa page-aligned units. A CPU joins the first group that has
 * no CPU remote from it (either way). Of the upa values that waste at most a third of the
 * CPUs' worth of units, the largest is taken, then smaller ones as long as they need no more
 * allocations. Groups sit back to back until the builder places them.
 */
export function buildAllocInfo(
  cpus: number,
  staticSize: number,
  reservedSize: number,
  dynSize: number,
  atomSize: number,
  distance: Distance,
  rules: AllocRules = {},
): AllocInfo {
  const page = rules.pageSize ?? PAGE_SIZE;
  const sizeSum = roundUp(staticSize + reservedSize + Math.max(dynSize, PERCPU_DYNAMIC_EARLY_SIZE), page);
  const minUnit = Math.max(sizeSum, rules.minUnitSize ?? PCPU_MIN_UNIT_SIZE);
  const allocSize = roundUp(minUnit, atomSize);
  const splits = (upa: number): boolean => allocSize % upa === 0 && (allocSize / upa) % page === 0;
  let maxUpa = Math.floor(allocSize / minUnit);
  while (!splits(maxUpa)) maxUpa--;

  const groupOf: number[] = [];
  for (let cpu = 0; cpu < cpus; cpu++) {
    const remote = (t: number): boolean =>
      distance !== null && (distance(cpu, t) > LOCAL_DISTANCE || distance(t, cpu) > LOCAL_DISTANCE);
    let group = 0;
    while (groupOf.some((g, t) => g === group && remote(t))) group++;
    groupOf.push(group);
  }
  const members = Array.from({ length: Math.max(...groupOf) + 1 }, (_, g) =>
    groupOf.flatMap((gc, cpu) => (gc === g ? [cpu] : [])),
  );

  let upa = 1;
  let lastAllocs = Infinity;
  for (let u = maxUpa; u >= 1; u--) {
    if (!splits(u)) continue;
    const allocs = members.reduce((n, m) => n + Math.ceil(m.length / u), 0);
    const wasted = allocs * u - cpus;
    if (wasted > Math.floor(cpus / 3)) continue;
    if (allocs > lastAllocs) break;
    lastAllocs = allocs;
    upa = u;
  }

  const unitSize = allocSize / upa;
  let unit = 0;
  const groups = members.map((m) => {
    const cpuMap: (number | null)[] = [...m];
    while (cpuMap.length % upa) cpuMap.push(null);
    const gi = { nrUnits: cpuMap.length, baseOffset: unit * unitSize, cpuMap };
    unit += gi.nrUnits;
    return gi;
  });
  return {
    staticSize,
    reservedSize,
    dynSize: sizeSum - staticSize - reservedSize,
    unitSize,
    atomSize,
    allocSize,
    groups,
  };
}

/**
 * pcpu_dump_alloc_info(): the sizes, then the units allocation by allocation, as many
 * allocations a line as fit in 60 columns rounded down to a power of two. Groups and CPUs
 * are zero-padded to the digits of their counts; an unused unit prints as dashes. Group
 * lines keep the space printk leaves at their end.
 */
export function dumpAllocInfo(ai: AllocInfo, cpus: number): string[] {
  const groupWidth = String(ai.groups.length).length;
  const cpuWidth = String(cpus).length;
  const empty = '-'.repeat(Math.min(cpuWidth, 8));
  const upa = ai.allocSize / ai.unitSize;
  const width = upa * (cpuWidth + 1) + groupWidth + 3;
  const perLine = 2 ** Math.floor(Math.log2(Math.max(Math.floor(60 / width), 1)));

  const lines = [
    `pcpu-alloc: s${ai.staticSize} r${ai.reservedSize} d${ai.dynSize} u${ai.unitSize} alloc=${ai.allocSize / ai.atomSize}*${ai.atomSize}`,
  ];
  let alloc = 0;
  ai.groups.forEach((gi, group) => {
    for (let u = 0; u < gi.nrUnits; u += upa, alloc++) {
      if (alloc % perLine === 0) lines.push('pcpu-alloc: ');
      let text = `[${String(group).padStart(groupWidth, '0')}] `;
      for (const cpu of gi.cpuMap.slice(u, u + upa))
        text += `${cpu === null ? empty : String(cpu).padStart(cpuWidth, '0')} `;
      lines[lines.length - 1] += text;
    }
  });
  return lines;
}

export interface BootSpec {
  cpus: number;
  /** the node of each CPU, where its units' pages come from */
  cpuToNode: readonly number[];
  /** groups by distance (sparse NUMA groups), or null for one group */
  distance: Distance;
  staticSize: number;
  reservedSize: number;
  dynSize: number;
  atomSize: number;
  backend: 'vm' | 'km';
  /** auto (the default) embeds, and on percpu-vm falls back to pages as x86 does */
  fc?: 'auto' | 'embed' | 'page';
  /** embed: the address boot memory gave each group; page: the first chunk's vmalloc address */
  addrs?: readonly number[];
  /** the page first chunk's vmalloc address when auto falls back to it */
  pageAddr?: number;
  /** the size of the vmalloc space, for the embedding builder's warning */
  vmallocSize?: number;
}

export interface Booted {
  model: PercpuModel;
  /** the boot lines, in order */
  lines: string[];
  ai: AllocInfo;
  base: number;
  /** per CPU: its unit's offset from a chunk's base */
  unitOffsets: number[];
}

/** pcpu_setup_first_chunk() refused the first chunk; `lines` is what boot printed. */
export class BootFailure extends Error {
  override readonly name = 'BootFailure';
  constructor(
    message: string,
    readonly lines: string[],
  ) {
    super(message);
  }
}

/**
 * setup_per_cpu_areas(): the first chunk with the embedding builder (groups where boot memory
 * put them, the base the lowest of them) or the page builder (one group, page by page, in a
 * vmalloc area), then pcpu_setup_first_chunk(). Auto embeds unless the groups span more than
 * three quarters of the vmalloc space; then, on percpu-vm, the warning, x86's fallback line
 * and the page builder. Throws BootFailure when the backend refuses the shape: percpu-km
 * takes one group only, and no page first chunk.
 */
export function bootFirstChunk(spec: BootSpec): Booted {
  const lines: string[] = [];
  const asked = spec.fc ?? 'auto';
  if (asked === 'page' && spec.backend === 'km')
    throw new BootFailure('contiguous percpu allocation (km) is incompatible with the paged first chunk', lines);
  let fc: 'embed' | 'page' = asked === 'page' ? 'page' : 'embed';
  let ai =
    fc === 'page'
      ? buildAllocInfo(spec.cpus, spec.staticSize, spec.reservedSize, 0, PAGE_SIZE, null)
      : buildAllocInfo(spec.cpus, spec.staticSize, spec.reservedSize, spec.dynSize, spec.atomSize, spec.distance);
  let base = 0;
  if (fc === 'embed') {
    const areas = spec.addrs ?? ai.groups.map((g) => g.baseOffset);
    base = Math.min(...areas);
    ai.groups.forEach((g, i) => (g.baseOffset = areas[i]! - base));
    const maxDistance = Math.max(...ai.groups.map((g) => g.baseOffset)) + ai.unitSize;
    if (spec.vmallocSize !== undefined && maxDistance > Math.floor((spec.vmallocSize * 3) / 4)) {
      lines.push(
        `PERCPU: max_distance=0x${maxDistance.toString(16)} too large for vmalloc space 0x${spec.vmallocSize.toString(16)}`,
      );
      if (asked === 'auto' && spec.backend === 'vm') {
        lines.push(`setup_percpu: auto allocator failed (-22), falling back to page size`);
        fc = 'page';
        ai = buildAllocInfo(spec.cpus, spec.staticSize, spec.reservedSize, 0, PAGE_SIZE, null);
      }
    }
  }
  const sizeSum = ai.staticSize + ai.reservedSize + ai.dynSize;
  if (fc === 'page') {
    base = (asked === 'page' ? spec.addrs?.[0] : spec.pageAddr) ?? 0;
    lines.push(
      `PERCPU: ${ai.unitSize / PAGE_SIZE} ${PAGE_SIZE >> 10}K pages/cpu @${hexPtr(base)} s${ai.staticSize} r${ai.reservedSize} d${ai.dynSize}`,
    );
  } else
    lines.push(
      `PERCPU: Embedded ${sizeSum / PAGE_SIZE} pages/cpu @${hexPtr(base)} s${ai.staticSize} r${ai.reservedSize} d${ai.dynSize} u${ai.unitSize}`,
    );

  // percpu-km's pcpu_verify_alloc_info(): one contiguous block per chunk, so one group
  if (spec.backend === 'km') {
    if (ai.groups.length !== 1) {
      lines.push("percpu: can't handle more than one groups");
      const why = 'PERCPU: failed to initialize, pcpu_verify_alloc_info(ai) < 0';
      lines.push(why, `PERCPU: cpu_possible_mask=0-${spec.cpus - 1}`, ...dumpAllocInfo(ai, spec.cpus));
      throw new BootFailure(why, lines);
    }
    const pages = (ai.groups[0]!.nrUnits * ai.unitSize) / PAGE_SIZE;
    const block = 2 ** Math.ceil(Math.log2(pages));
    if (block > pages) lines.push(`percpu: wasting ${block - pages} pages per chunk`);
  }
  lines.push(...dumpAllocInfo(ai, spec.cpus));

  const cpuToUnit: number[] = [];
  const unitOffsets: number[] = [];
  let unit = 0;
  for (const g of ai.groups) {
    g.cpuMap.forEach((cpu, i) => {
      if (cpu === null) return;
      cpuToUnit[cpu] = unit + i;
      unitOffsets[cpu] = g.baseOffset + i * ai.unitSize;
    });
    unit += g.nrUnits;
  }
  const layout: Layout = {
    unitSize: ai.unitSize,
    staticSize: ai.staticSize,
    reservedSize: ai.reservedSize,
    dynSize: ai.dynSize,
    backend: spec.backend,
    cpuToNode: spec.cpuToNode,
    cpuToUnit,
  };
  return { model: new PercpuModel(layout), lines, ai, base, unitOffsets };
}

/** CPUs spread over nodes in blocks, as the simulator's machine places them. */
export function blockNodes(cpus: number, nodes: number): number[] {
  return Array.from({ length: cpus }, (_, cpu) => Math.floor((cpu * nodes) / cpus));
}

/** 10 within a node, 20 across. */
export function nodeDistance(cpuToNode: readonly number[]): (a: number, b: number) => number {
  return (a, b) => (cpuToNode[a] === cpuToNode[b] ? LOCAL_DISTANCE : 2 * LOCAL_DISTANCE);
}
