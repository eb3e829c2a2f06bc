/**
 * The contract between the machine and a workload (examples/*.ts). A workload's functions run
 * inside the CPU workers, except verify(), which runs on the main thread after the run and
 * reads the machine's memory directly.
 */
import type { MemAccess } from '../mem/access.ts';
import type { PerCpu } from '../../workers/cpu-api.ts';

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
  /** kernel log lines of the run (boot lines, warnings, allocation failures) */
  dmesg: readonly string[];
}

export interface Workload<R = unknown> {
  name: string;
  description: string;
  /** default arguments; the command line may override any of them */
  defaults: Args;
  /** runs on the boot CPU before slab is online (early percpu allocations) */
  early?(cpu: PerCpu, args: Args): Promise<unknown>;
  /** runs on every CPU, concurrently, once late init is done; `early` is what early() returned */
  run(cpu: PerCpu, args: Args, early: unknown): Promise<R>;
  /** checks the outcome; returns the failures (empty when the run is correct) */
  verify?(ctx: VerifyContext<R>): string[];
  /** runs on the boot CPU after verify(), to free what early() or run() kept */
  teardown?(cpu: PerCpu, args: Args, early: unknown): Promise<void>;
}
