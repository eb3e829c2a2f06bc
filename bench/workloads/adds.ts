/**
 * Benchmark workload: the per-CPU data path against raw shared-memory access, on this CPU's
 * copy of a one-page area. this_cpu_add() and this_cpu_write() are calls of the per-CPU API;
 * this_cpu_words() is a typed view of the copy (checked, when the machine checks isolation).
 */
import type { Workload } from '../../src/api/workload.ts';

interface Rates {
  raw: number;
  percpu: number;
  view: number;
  rawWrites: number;
  writes: number;
  viewWrites: number;
}

const WORDS = 1024;

const adds: Workload<Rates> = {
  name: 'adds',
  description: 'this_cpu_add, this_cpu_write and this_cpu_words against raw shared-memory access',
  defaults: { n: 5_000_000 },
  async early(cpu) {
    return cpu.alloc_percpu(WORDS * 4, WORDS * 4);
  },
  async run(cpu, args, early) {
    const n = Number(args.n);
    const ptr = early as number;
    const raw = new Int32Array(
      cpu.mem.sab,
      cpu.mem.translate(cpu.this_cpu_ptr(ptr)) + Number(cpu.mem.i32.byteOffset),
      WORDS,
    );
    const view = cpu.this_cpu_words(ptr, WORDS);
    const rate = (fn: () => void): number => {
      fn(); // warm
      let best = 0;
      for (let k = 0; k < 2; k++) {
        const t = performance.now();
        fn();
        best = Math.max(best, n / ((performance.now() - t) / 1000));
      }
      return best;
    };
    return {
      raw: rate(() => {
        for (let i = 0; i < n; i++) raw[0]! += 1;
      }),
      percpu: rate(() => {
        for (let i = 0; i < n; i++) cpu.this_cpu_add(ptr, 1);
      }),
      view: rate(() => {
        for (let i = 0; i < n; i++) view[0]! += 1;
      }),
      rawWrites: rate(() => {
        for (let i = 0; i < n; i++) raw[i & (WORDS - 1)] = i;
      }),
      writes: rate(() => {
        for (let i = 0; i < n; i++) cpu.this_cpu_write(ptr + (i & (WORDS - 1)) * 4, i);
      }),
      viewWrites: rate(() => {
        for (let i = 0; i < n; i++) view[i & (WORDS - 1)] = i;
      }),
    };
  },
};

export default adds;
