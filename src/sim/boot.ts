/**
 * The one place a simulated machine is booted: the memory, setup_per_cpu_areas() on it, and
 * every rule that follows from the configuration, each derived here once:
 *
 *   - units are grouped by NUMA node (sparse groups) only on percpu-vm with more than one
 *     node: a percpu-km chunk is one contiguous block, so one group, whatever the nodes;
 *   - page-allocation failures are injected from a PRNG of their own, seeded from the run's
 *     seed, so that they do not move the scheduler's draws;
 *   - the static percpu variables the CPUs see are read off the booted kernel image.
 */
import { PAGE_SIZE, PERCPU_DYNAMIC_RESERVE, PERCPU_MODULE_RESERVE } from '../kernel/constants.ts';
import { makeKernelImage, type StaticVar } from '../kernel/image.ts';
import type { KernelFault, MutantName } from '../kernel/mutants.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { PercpuEnv } from '../kernel/percpu-internal.ts';
import {
  type BackendKind,
  DEFAULT_STATIC_SIZE,
  type FirstChunkKind,
  type PercpuSetup,
  setup_per_cpu_areas,
} from '../kernel/setup.ts';
import { Machine } from '../mem/machine.ts';
import { Prng } from '../util/prng.ts';

export interface MachineSpec {
  cpus: number;
  nodes: number;
  /** the node of each CPU (default: CPUs in contiguous blocks per node) */
  cpuToNode?: readonly number[];
  /** node_distance(), nodes x nodes (default: 10 local, 20 remote) */
  distance?: readonly (readonly number[])[];
  backend: BackendKind;
  fc?: FirstChunkKind;
  memoryMiB: number;
  /** the seed of the page allocator's fault injection (see faultSeed) */
  seed?: number;
  /** a shadow region for the isolation checker (default none) */
  shadow?: boolean;
  mutant?: MutantName | null;
  /** bugs to build in beside the mutant (tests of the checkers) */
  bugs?: readonly KernelFault[];
  /** fraction of page allocations (after boot) that fail */
  failRate?: number;
  /** static percpu variables beside the builtin ones, in the kernel image */
  staticVars?: readonly Omit<StaticVar, 'offset'>[];
  /** the first chunk's sizes (default: the image's static section, the module reserve, the dynamic reserve, a page) */
  sizes?: Pick<PercpuSetup, 'static_size' | 'reserved_size' | 'dyn_size' | 'atom_size'>;
  /** group units by node: what the caller's format says, instead of groupsByNode() */
  numaGroups?: boolean;
  vmallocBytes?: number;
  /** keep what is written into areas (a trace replay reads none) */
  contents?: boolean;
  /** what the allocator calls out to (see task-env.ts); by default nothing checks */
  env?: PercpuEnv;
}

/** Whether units are grouped by node: sparse NUMA groups need percpu-vm and more than one node. */
export function groupsByNode(spec: Pick<MachineSpec, 'nodes' | 'backend'>): boolean {
  return spec.nodes > 1 && spec.backend === 'vm';
}

/** The seed of the page allocator's fault injection, apart from the scheduler's. */
export const faultSeed = (seed: number): number => seed ^ 0x5eed;

/** Boots a machine: memory, then setup_per_cpu_areas() on the boot CPU. Throws KernelBug for a bad configuration. */
export function bootMachine(spec: MachineSpec): { machine: Machine; pc: Percpu } {
  const machine = new Machine({
    cpus: spec.cpus,
    nodes: spec.nodes,
    ...(spec.cpuToNode ? { cpuToNode: [...spec.cpuToNode] } : {}),
    ...(spec.distance ? { distance: spec.distance.map((row) => [...row]) } : {}),
    memoryBytes: Math.round(spec.memoryMiB * 1024 * 1024),
    shadow: spec.shadow ?? false,
    ...(spec.vmallocBytes ? { vmallocBytes: spec.vmallocBytes } : {}),
    ...(spec.contents === false ? { contents: false } : {}),
  });
  const pc = setup_per_cpu_areas(machine, {
    ...spec.sizes,
    backend: spec.backend,
    ...(spec.fc ? { fc: spec.fc } : {}),
    numa_groups: spec.numaGroups ?? groupsByNode(spec),
    mutants: [...(spec.mutant ? [spec.mutant] : []), ...(spec.bugs ?? [])],
    ...(spec.staticVars ? { image: makeKernelImage(DEFAULT_STATIC_SIZE, [...spec.staticVars]) } : {}),
    ...(spec.env ? { env: spec.env } : {}),
  });
  if (spec.failRate)
    machine.buddy.setFaultInjection({ failRate: spec.failRate, prng: new Prng(faultSeed(spec.seed ?? 0)) });
  return { machine, pc };
}

/**
 * The first chunk as configured, for a checker that boots its own model of it: the sizes
 * setup_per_cpu_areas() is given (the kernel's defaults where the spec leaves them) and where
 * each CPU sits. Nothing here is read from the booted allocator.
 */
export function firstChunkSpec(spec: MachineSpec, cpuToNode: readonly number[]) {
  return {
    cpus: spec.cpus,
    cpuToNode,
    groupsByNode: spec.numaGroups ?? groupsByNode(spec),
    ...(spec.distance ? { nodeDistance: spec.distance } : {}),
    staticSize: spec.sizes?.static_size ?? DEFAULT_STATIC_SIZE,
    reservedSize: spec.sizes?.reserved_size ?? PERCPU_MODULE_RESERVE,
    dynSize: spec.sizes?.dyn_size ?? PERCPU_DYNAMIC_RESERVE,
    atomSize: spec.sizes?.atom_size ?? PAGE_SIZE,
    backend: spec.backend,
    fc: spec.fc ?? 'auto',
  };
}

/** The kernel image's static percpu variables: name -> percpu pointer and size. */
export function staticVarMap(pc: Percpu): Record<string, { ptr: number; size: number }> {
  const out: Record<string, { ptr: number; size: number }> = {};
  for (const v of pc.image.vars) out[v.name] = { ptr: pc.image.per_cpu_start + v.offset, size: v.size };
  return out;
}
