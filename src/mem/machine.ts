/**
 * The simulated machine: physical memory, its allocators, the vmalloc space and the CPU
 * topology, assembled from one configuration.
 */
import { BuddyAllocator } from './buddy.ts';
import { MemError, checkInt } from './errors.ts';
import { Memblock } from './memblock.ts';
import { PhysMem, type PhysConfig } from './phys.ts';
import { VmSpace } from './vmalloc.ts';
import { MemAccess } from './access.ts';
import { Shadow } from './shadow.ts';

/** NR_CPUS: a machine booted only for its boot lines may have as many CPUs as 2.6.36 allows */
export const MAX_CPUS = 4096;

export interface MachineConfig extends PhysConfig {
  cpus?: number;
  /** cpu -> node; defaults to contiguous blocks of CPUs per node */
  cpuToNode?: number[];
}

export class Machine {
  readonly mem: PhysMem;
  readonly buddy: BuddyAllocator;
  readonly memblock: Memblock;
  readonly vm: VmSpace;
  readonly access: MemAccess;
  readonly shadow: Shadow;
  readonly cpus: number;
  readonly cpuToNodeMap: readonly number[];

  constructor(cfg: MachineConfig = {}) {
    const cpus = checkInt('Machine', 'cpus', cfg.cpus ?? 4, 1, MAX_CPUS);
    this.mem = PhysMem.create(cfg);
    const nodes = this.mem.nodes;
    const map = cfg.cpuToNode ?? Array.from({ length: cpus }, (_, c) => Math.floor((c * nodes) / cpus));
    if (map.length !== cpus) throw new MemError('EINVAL', 'Machine', 'cpuToNode', `must have ${cpus} entries`);
    map.forEach((n, c) => checkInt('Machine', `cpuToNode[${c}]`, n, 0, nodes - 1));
    this.cpus = cpus;
    this.cpuToNodeMap = [...map];
    this.buddy = new BuddyAllocator(this.mem);
    this.memblock = new Memblock(this.mem);
    this.vm = new VmSpace(this.mem);
    this.access = new MemAccess(this.mem.sab, { contents: cfg.contents ?? true });
    this.shadow = new Shadow(this.mem.sab);
  }

  get sab(): SharedArrayBuffer {
    return this.mem.sab;
  }

  cpuToNode(cpu: number): number {
    return this.cpuToNodeMap[checkInt('cpu_to_node', 'cpu', cpu, 0, this.cpus - 1)]!;
  }

  /** node_distance(cpu_to_node(a), cpu_to_node(b)): the distance callback of the first chunk. */
  cpuDistance(a: number, b: number): number {
    return this.mem.distance[this.cpuToNode(a)]![this.cpuToNode(b)]!;
  }

  /** mm init: the boot allocator hands all free memory to the page allocator. */
  mmInit(): number {
    return this.memblock.handOver(this.buddy);
  }
}
