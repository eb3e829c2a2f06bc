/**
 * The contract between the machine and a workload (examples/*.ts). A workload's functions run
 * inside the CPU workers, except verify(), which runs on the main thread after the run and
 * reads the machine's memory directly.
 */
import type { MemAccess } from '../mem/access.ts';
import type { PerCpu } from './per-cpu.ts';
import type { MutantName } from '../kernel/mutants.ts';
import type { BackendKind } from '../kernel/setup.ts';

/** Machine settings a workload is meant for; command-line flags still win. */
export interface WorkloadConfig {
  cpus?: number;
  nodes?: number;
  backend?: BackendKind;
  mutant?: MutantName;
  countViolations?: boolean;
  /**
   * The physical memory, in MiB, the workload needs on this machine with these arguments.
   * Without --memory a run gets at least this much; a need beyond the largest machine
   * (4096 MiB) is refused before the run, naming it. Areas every CPU allocates at once cost
   * their size times the CPU count, per CPU: the need of such a workload grows as cpus².
   */
  memoryMiB?(machine: { cpus: number; nodes: number; args: Args }): number;
}

export type Args = Record<string, number | string | boolean>;

export interface VerifyContext<R> {
  /** each CPU's return value from run(), by CPU */
  results: R[];
  /** what early() returned on the boot CPU */
  early: unknown;
  args: Args;
  nr_cpus: number;
  access: MemAccess;
  per_cpu_ptr(ptr: number, cpu: number): number;
  /** the NUMA node of a CPU, and of a physical address */
  cpu_to_node(cpu: number): number;
  phys_to_node(phys: number): number;
  /** the physical address behind a per-CPU address (per_cpu_ptr_to_phys) */
  per_cpu_ptr_to_phys(addr: number): number;
  /** kernel log lines of the run (boot lines, warnings, allocation failures) */
  dmesg: readonly string[];
}

export interface Workload<R = unknown> {
  name: string;
  description: string;
  /** default arguments; the command line may override any of them (none when left out) */
  defaults?: Args;
  /** the machine this workload is meant for */
  config?: WorkloadConfig;
  /** runs on the boot CPU before slab is online (early percpu allocations) */
  early?(cpu: PerCpu, args: Args): Promise<unknown>;
  /** runs on every CPU, concurrently, once late init is done; `early` is what early() returned */
  run(cpu: PerCpu, args: Args, early: unknown): Promise<R>;
  /** checks the outcome; returns the failures (empty when the run is correct) */
  verify?(ctx: VerifyContext<R>): string[];
  /** runs on the boot CPU after verify(), to free what early() or run() kept */
  teardown?(cpu: PerCpu, args: Args, early: unknown): Promise<void>;
}
