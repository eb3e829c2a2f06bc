/** Benchmark workload: this_cpu_add against raw Atomics-free increments of a SAB word. */
import type { Workload } from '../../src/smp/workload.ts';

const adds: Workload<{ raw: number; percpu: number }> = {
  name: 'adds',
  description: 'this_cpu_add rate against raw shared-memory increments',
  defaults: { n: 5_000_000 },
  async early(cpu) {
    return cpu.alloc_percpu(4, 4);
  },
  async run(cpu, args, early) {
    const n = Number(args.n);
    const ptr = early as number;
    const raw = new Int32Array(cpu.mem.sab, cpu.mem.translate(cpu.this_cpu_ptr(ptr)) + Number(cpu.mem.i32.byteOffset), 1);
    const rate = (fn: () => void): number => {
      const t = performance.now();
      fn();
      return n / ((performance.now() - t) / 1000);
    };
    const rawLoop = () => {
      for (let i = 0; i < n; i++) raw[0]! += 1;
    };
    const pcpuLoop = () => {
      for (let i = 0; i < n; i++) cpu.this_cpu_add(ptr, 1);
    };
    rawLoop();
    pcpuLoop();
    return { raw: Math.max(rate(rawLoop), rate(rawLoop)), percpu: Math.max(rate(pcpuLoop), rate(pcpuLoop)) };
  },
};

export default adds;
