/**
 * NUMA: the embedding first-chunk allocator with sparse groups (seed 002). CPUs on different
 * nodes go into different groups, each group's units are allocated from its own node's
 * memory, and the groups sit as far apart in the address space as the nodes are. The boot
 * lines show the groups; every CPU then checks that its unit, in the first chunk and in new
 * chunks alike, is backed by its own node's memory.
 *
 *   percpu-sim run numa --nodes 4 --cpus 8
 */
import type { Workload } from 'percpu-sim';

interface NumaResult {
  cpu: number;
  ptrs: number[];
}

const numa: Workload<NumaResult> = {
  name: 'numa',
  description: 'sparse NUMA groups: every CPU unit is backed by memory of its own node',
  defaults: { allocs: 6 },
  config: {
    cpus: 4,
    nodes: 2,
    // every CPU's 30000-byte areas have a copy on every CPU: nine pages each, cpus² of them
    memoryMiB: ({ cpus, args }) => 64 + (1.5 * Math.ceil(Number(args.allocs) / 2) * cpus * cpus * 9) / 256,
  },
  async run(cpu, args) {
    const ptrs: number[] = [];
    for (let i = 0; i < Number(args.allocs); i++) {
      const p = await cpu.alloc_percpu(i % 2 ? 30000 : 64, 64);
      if (!p) throw new Error(`alloc failed: ${cpu.lastError}`);
      cpu.fill(cpu.this_cpu_ptr(p), cpu.cpu + 1, 64);
      ptrs.push(p);
    }
    await cpu.barrier();
    return { cpu: cpu.cpu, ptrs };
  },
  verify({ results, nr_cpus, per_cpu_ptr, per_cpu_ptr_to_phys, cpu_to_node, phys_to_node, dmesg }) {
    const failures: string[] = [];
    if (!dmesg.some((l) => /^pcpu-alloc: .*\[1\]/.test(l))) failures.push('the boot lines show a single group');
    for (const r of results)
      for (const p of r.ptrs)
        for (let c = 0; c < nr_cpus; c++) {
          const node = phys_to_node(per_cpu_ptr_to_phys(per_cpu_ptr(p, c)));
          if (node !== cpu_to_node(c))
            failures.push(`cpu ${c}'s copy of ${p.toString(16)} is on node ${node}, not node ${cpu_to_node(c)}`);
        }
    return failures;
  },
};

export default numa;
