/**
 * What crosses to a CPU worker thread and back for one phase of a workload: the task the
 * main thread sends (workers/cpu.ts runs it) and the result the thread returns. Plain data:
 * errors come back as fields, since they cross a thread boundary.
 */
import type { MessagePort } from 'node:worker_threads';
import type { CpuContext, CpuStats } from '../api/per-cpu.ts';
import type { AccessFault } from '../check/isolation.ts';

export interface CpuTask {
  ctx: CpuContext;
  /**
   * The machine's memory. It comes with the task rather than as piscina's workerData, so the
   * thread never loads piscina's pool code just to read it (a fifth of a thread's start-up).
   */
  sab: SharedArrayBuffer;
  port: MessagePort;
  /** file URL of the workload module, plain JavaScript (bundled by the main thread) */
  workload: string;
  phase: 'early' | 'run' | 'teardown';
  args: Record<string, number | string | boolean>;
  /** what the workload's early() returned on the boot CPU */
  early?: unknown;
}

export interface CpuTaskResult {
  cpu: number;
  threadId: number;
  ok: boolean;
  /** the phase did not end on this CPU (set by the main thread; stats are then unknown) */
  lost?: 'timeout' | 'died' | 'stopped';
  result?: unknown;
  /** `at`: the workload's file and line the error was thrown from, when its stack names them */
  error?: { name: string; message: string; code?: string; addr?: number; fault?: AccessFault; at?: string };
  /** isolation faults recorded in counting mode */
  faults: AccessFault[];
  stats: CpuStats;
  ms: number;
}
