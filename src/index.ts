/**
 * The public API of percpu-sim, for people writing their own workloads:
 *
 *   import type { Workload, PerCpu } from 'percpu-sim';
 *
 * and the stress program, which a workload can run on its CPUs as examples/stress.ts does.
 * See docs/workloads.md. What is exported here is bundled into every CPU thread that runs such
 * a workload: keep it to modules without heavy imports.
 */
export type { Args, VerifyContext, Workload, WorkloadConfig } from './api/workload.ts';
export type { CpuContext, CpuStats, PerCpu, Width, WordsOptions } from './api/per-cpu.ts';
export {
  type Area,
  DEFAULT_STRESS_ARGS,
  type SizeMix,
  type StressArgs,
  type StressCpuResult,
  type WorkerStressArgs,
  probeArea,
  stressCpu,
  stressEarly,
} from './stress/program.ts';
