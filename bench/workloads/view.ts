/**
 * Benchmark workload: a hot loop on a this_cpu_words() view, `v[i & 15] += 1` n times on every
 * CPU, then the sum checked through the API. Timed whole-process, with checking and with
 * `--no-check`: `percpu-sim run ./bench/workloads/view.ts --cpus 2 --arg n=20000000`.
 */
import type { Workload } from '../../src/api/workload.ts';

const view: Workload<{ n: number }> = {
  name: 'view',
  description: 'v[i & 15] += 1 on a this_cpu_words view, n times on every CPU',
  defaults: { n: 2_000_000 },
  async early(cpu) {
    return cpu.alloc_percpu(64, 64);
  },
  async run(cpu, args, early) {
    const ptr = early as number;
    const n = Number(args.n);
    await cpu.barrier();
    const v = cpu.this_cpu_words(ptr, 16);
    for (let i = 0; i < n; i++) v[i & 15]! += 1;
    let sum = 0;
    for (let i = 0; i < 16; i++) sum += cpu.this_cpu_read(ptr + i * 4);
    if (sum !== n) throw new Error(`cpu ${cpu.cpu}: the view's words sum to ${sum}, expected ${n}`);
    return { n };
  },
  async teardown(cpu, _args, early) {
    await cpu.free_percpu(early as number);
  },
};

export default view;
