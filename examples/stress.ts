/**
 * The stress program on real worker threads: the boot CPU allocates before slab is online
 * until the early map runs out, then every CPU allocates, stamps, checks and frees at random
 * through the checked per-CPU API, truly in parallel. `percpu-sim stress` runs the same
 * program deterministically; this one finds what only real parallelism shows.
 */
import {
  type Area,
  DEFAULT_STRESS_ARGS,
  type StressCpuResult,
  type WorkerStressArgs,
  type Workload,
  probeArea,
  stressCpu,
  stressEarly,
} from 'percpu-sim';

const stress: Workload<StressCpuResult> = {
  name: 'stress',
  description: 'random allocation, stamping, checking and freeing on every CPU, with every write checked',
  // tornProbe: iterations of the torn-access probe on free threads (0: none); word: the machine's
  defaults: { ...DEFAULT_STRESS_ARGS, tornProbe: 0, word: 64 },
  async early(cpu, args) {
    const a = { ...DEFAULT_STRESS_ARGS, ...args } as WorkerStressArgs;
    // the torn-access probe's area first: every CPU gets it with the early result
    const probe = await probeArea(cpu, a);
    return { live: (await stressEarly(cpu, a)).live, probe };
  },
  run(cpu, args, early) {
    const e = (early as { live: Area[]; probe: number } | undefined) ?? { live: [], probe: 0 };
    // the boot CPU carries the early areas on and frees them with its own
    return stressCpu(
      cpu,
      { ...DEFAULT_STRESS_ARGS, ...args } as WorkerStressArgs,
      () => false,
      cpu.cpu === 0 ? e.live : [],
      e.probe,
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
