/**
 * A historical locking bug, brought back, and the lock checker's report. This runs with the
 * 2009 pcpu_reclaim() bug switched on (reclaim drops pcpu_alloc_mutex before depopulating):
 * CPUs fill and empty chunks so that the reclaim work runs, and the checker reports the
 * depopulation it sees outside the mutex. Any other mutant can be tried the same way with
 * --mutant NAME (percpu-sim mutants lists them).
 *
 *   percpu-sim run lock-mutant         (the run fails: that is the point)
 */
import type { Workload } from 'percpu-sim';

const lockMutant: Workload = {
  name: 'lock-mutant',
  description: 'chunks filled and emptied with the 2009 reclaim locking bug on; the lock checker reports it',
  defaults: { rounds: 4 },
  config: { cpus: 2, mutant: 'reclaim-drops-mutex' },
  async run(cpu, args) {
    for (let r = 0; r < Number(args.rounds); r++) {
      const big = [await cpu.alloc_percpu(60000, 8), await cpu.alloc_percpu(60000, 8)];
      for (const p of big) cpu.fill(cpu.this_cpu_ptr(p), cpu.cpu + 1, 64);
      await cpu.free_batch(big); // two empty chunks: the reclaim work runs
    }
  },
};

export default lockMutant;
