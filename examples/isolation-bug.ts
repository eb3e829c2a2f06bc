/**
 * Isolation violations, committed on purpose and caught. CPU 1 writes into CPU 0's copy of
 * a counter without declaring it remote, then writes to an area it already freed, then past
 * the end of an area. The checker runs in counting mode here, so the run shows all three;
 * each report names the CPU, the address, the allocation and whose unit was hit.
 *
 *   percpu-sim run isolation-bug      (the run fails: that is the point)
 */
import type { Workload } from 'percpu-sim';

const isolationBug: Workload = {
  name: 'isolation-bug',
  description: 'a foreign-unit write, a use after free and an out-of-bounds write, all caught',
  defaults: {},
  config: { cpus: 2, countViolations: true },
  async early(cpu) {
    return cpu.alloc_percpu(8, 8);
  },
  async run(cpu, _args, early) {
    const counter = early as number;
    cpu.this_cpu_inc(counter); // fine: our own copy
    cpu.per_cpu_write(counter, (cpu.cpu + 1) % cpu.nr_cpus, 0); // fine: declared remote
    if (cpu.cpu !== 1) return;
    cpu.write(cpu.per_cpu_ptr(counter, 0), 42); // BUG: CPU 0's unit, not declared remote
    const gone = await cpu.alloc_percpu(32, 8);
    await cpu.free_percpu(gone);
    cpu.this_cpu_write(gone, 1); // BUG: use after free
    const small = await cpu.alloc_percpu(16, 8);
    cpu.fill(cpu.this_cpu_ptr(small), 0xff, 24); // BUG: 8 bytes past the end
    await cpu.free_percpu(small);
  },
  async teardown(cpu, _args, early) {
    await cpu.free_percpu(early as number);
  },
};

export default isolationBug;
