/**
 * The stress program on real worker threads: the boot CPU allocates before slab is online
 * until the early map runs out, then every CPU allocates, stamps, checks and frees at random
 * through the checked per-CPU API, truly in parallel. `percpu-sim stress` runs the same
 * program deterministically; this one finds what only real parallelism shows.
 */
import {
  type Area,
  DEFAULT_STRESS_ARGS,
  type StressArgs,
  type StressCpuResult,
  type Workload,
  stressCpu,
  stressEarly,
} from 'percpu-sim';

const stress: Workload<StressCpuResult> = {
  name: 'stress',
  description: 'random allocation, stamping, checking and freeing on every CPU, with every write checked',
  defaults: { ...DEFAULT_STRESS_ARGS },
  async early(cpu, args) {
    return (await stressEarly(cpu, { ...DEFAULT_STRESS_ARGS, ...args } as StressArgs)).live;
  },
  run(cpu, args, early) {
    // the boot CPU carries the early areas on and frees them with its own
    return stressCpu(
      cpu,
      { ...DEFAULT_STRESS_ARGS, ...args } as StressArgs,
      () => false,
      cpu.cpu === 0 ? ((early as Area[] | undefined) ?? []) : [],
    );
  },
  verify({ results }) {
    return results.flatMap((r) =>
      r.allocs + r.inherited === r.frees
        ? []
        : [`cpu ${r.cpu} allocated ${r.allocs} areas, took over ${r.inherited} and freed ${r.frees}`],
    );
  },
};

export default stress;
