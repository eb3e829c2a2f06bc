/** Benchmark workload: alloc + free round trips, one message each or in batches. */
import type { Workload } from '../../src/api/workload.ts';

const roundtrip: Workload<{ ops: number; ms: number }> = {
  name: 'roundtrip',
  description: 'alloc/free round trips for the benchmarks',
  defaults: { n: 2000, batch: 0 },
  async run(cpu, args) {
    const n = Number(args.n);
    const batch = Number(args.batch);
    await cpu.barrier();
    const t = performance.now();
    let ops = 0;
    if (batch > 0) {
      for (let i = 0; i < n; i += batch) {
        const r = await cpu.alloc_batch(Array.from({ length: batch }, () => ({ size: 16, align: 8 })));
        await cpu.free_batch(r.flatMap((x) => (x.ok ? [x.ptr] : [])));
        ops += 2 * batch;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const p = await cpu.alloc_percpu(16, 8);
        await cpu.free_percpu(p);
        ops += 2;
      }
    }
    return { ops, ms: performance.now() - t };
  },
};

export default roundtrip;
