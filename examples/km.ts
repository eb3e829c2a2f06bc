/**
 * The percpu-km backend (seed 004): every chunk is one contiguous block from the page
 * allocator, fully populated from the start, used through the direct map. With 3 CPUs a
 * chunk is 48 pages, so each block of 64 pages wastes 16 (the kernel says so at boot; with
 * a power of two CPUs nothing is wasted and it says nothing). Every CPU checks that its
 * copy of each area is exactly one unit away from its neighbour's in physical memory.
 *
 *   percpu-sim run km
 */
import type { Workload } from 'percpu-sim';

const km: Workload<number[]> = {
  name: 'km',
  description: 'the kernel-memory chunk backend: contiguous chunks, one unit apart in physical memory',
  defaults: { allocs: 8 },
  config: {
    cpus: 3,
    backend: 'km',
    // cpus² copies of every CPU's areas, in chunks of a power of two pages (up to half wasted)
    memoryMiB: ({ cpus, args }) => 64 + (3 * cpus * cpus * Number(args.allocs) * 12000) / 2 ** 20,
  },
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
    // a chunk is every unit in one block of a power of two pages: 3 CPUs of 16 pages waste 16
    const unit = Number(/ u(\d+)$/.exec(dmesg.find((l) => l.startsWith('PERCPU: Embedded')) ?? '')?.[1] ?? NaN);
    const pages = (unit / 4096) * nr_cpus;
    const wasted = 2 ** Math.ceil(Math.log2(pages)) - pages;
    const line = `percpu: wasting ${wasted} pages per chunk`;
    if (wasted > 0 ? !dmesg.includes(line) : dmesg.some((l) => l.includes('wasting')))
      failures.push(wasted > 0 ? `no "${line}" line at boot` : 'a "wasting" line at boot, where no page is wasted');
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
