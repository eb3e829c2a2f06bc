/**
 * The percpu-km backend (seed 004): every chunk is one contiguous block from the page
 * allocator, fully populated from the start, used through the direct map. With 3 CPUs a
 * chunk is 48 pages, so each block of 64 pages wastes 16 (the kernel says so at boot). Every
 * CPU checks that its copy of each area is exactly one unit away from its neighbour's in
 * physical memory.
 *
 *   percpu-sim run km
 */
import type { Workload } from 'percpu-sim';

const km: Workload<number[]> = {
  name: 'km',
  description: 'the kernel-memory chunk backend: contiguous chunks, one unit apart in physical memory',
  defaults: { allocs: 8 },
  config: { cpus: 3, backend: 'km' },
  async run(cpu, args) {
    const ptrs: number[] = [];
    for (let i = 0; i < Number(args.allocs); i++) {
      const p = await cpu.alloc_percpu(12000, 16);
      if (!p) throw new Error(`alloc failed: ${cpu.lastError}`);
      cpu.fill(cpu.this_cpu_ptr(p), 0xa0 + cpu.cpu, 12000);
      ptrs.push(p);
    }
    await cpu.barrier();
    return ptrs;
  },
  verify({ results, nr_cpus, per_cpu_ptr, per_cpu_ptr_to_phys, dmesg }) {
    const failures: string[] = [];
    if (!dmesg.includes('percpu: wasting 16 pages per chunk'))
      failures.push('no "wasting 16 pages per chunk" line at boot');
    for (const ptrs of results)
      for (const p of ptrs) {
        const base = per_cpu_ptr_to_phys(per_cpu_ptr(p, 0));
        const unit = per_cpu_ptr_to_phys(per_cpu_ptr(p, 1)) - base;
        for (let c = 1; c < nr_cpus; c++)
          if (per_cpu_ptr_to_phys(per_cpu_ptr(p, c)) !== base + c * unit)
            failures.push(`cpu ${c}'s copy of ${p.toString(16)} is not one unit after cpu ${c - 1}'s`);
      }
    return failures;
  },
};

export default km;
