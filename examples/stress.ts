/**
 * The stress program on real worker threads: every CPU allocates, stamps, checks and frees
 * at random through the checked per-CPU API, truly in parallel. `percpu-sim stress` runs the
 * same program deterministically; this one finds what only real parallelism shows.
 */
import { DEFAULT_STRESS_ARGS, type StressArgs, type StressCpuResult, stressCpu } from '../src/stress/program.ts';
import type { Workload } from '../src/smp/workload.ts';

const stress: Workload<StressCpuResult> = {
  name: 'stress',
  description: 'random allocation, stamping, checking and freeing on every CPU, with every write checked',
  defaults: { ...DEFAULT_STRESS_ARGS },
  run(cpu, args) {
    return stressCpu(cpu, { ...DEFAULT_STRESS_ARGS, ...args } as StressArgs);
  },
  verify({ results }) {
    return results.flatMap((r) => (r.allocs === r.frees ? [] : [`cpu ${r.cpu} allocated ${r.allocs} areas and freed ${r.frees}`]));
  },
};

export default stress;
