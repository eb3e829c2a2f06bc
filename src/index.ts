/**
 * The public types of percpu-sim, for people writing their own workloads:
 *
 *   import type { Workload, PerCpu } from 'percpu-sim';
 *
 * See docs/workloads.md.
 */
export type { Args, VerifyContext, Workload, WorkloadConfig } from './api/workload.ts';
export type { CpuContext, CpuStats, PerCpu, Width } from './api/per-cpu.ts';
