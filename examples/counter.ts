/**
 * A percpu counter: every CPU adds to its own copy of one counter, and the sum over all
 * copies equals the total number of increments. This is what percpu_counter and the SNMP
 * MIB counters are built on: no shared cache line, no lock, exact totals.
 */
import type { Workload } from 'percpu-sim';

interface CounterResult {
  ptr: number;
  adds: number;
}

const counter: Workload<CounterResult> = {
  name: 'counter',
  description: 'every CPU increments its own unit millions of times; the sum over units is exact',
  defaults: { adds: 2_000_000 },
  // the boot CPU allocates the counter before slab is online, as early kernel code does
  async early(cpu) {
    const ptr = await cpu.alloc_percpu(8, 8);
    if (!ptr) throw new Error(`alloc_percpu failed: ${cpu.lastError}`);
    return ptr;
  },
  async run(cpu, args, early) {
    const ptr = early as number;
    const adds = Number(args.adds);
    await cpu.barrier();
    for (let i = 0; i < adds; i++) cpu.this_cpu_inc(ptr);
    return { ptr, adds };
  },
  verify({ results, nr_cpus, access, per_cpu_ptr }) {
    const ptr = results[0]!.ptr;
    let sum = 0;
    const failures: string[] = [];
    for (let c = 0; c < nr_cpus; c++) {
      const v = access.read32(per_cpu_ptr(ptr, c));
      if (v !== results[c]!.adds) failures.push(`cpu ${c}'s copy holds ${v}, expected ${results[c]!.adds}`);
      sum += v;
    }
    const total = results.reduce((a, r) => a + r.adds, 0);
    if (sum !== total) failures.push(`the counter sums to ${sum}, expected ${total}`);
    return failures;
  },
  async teardown(cpu, _args, early) {
    await cpu.free_percpu(early as number);
  },
};

export default counter;
