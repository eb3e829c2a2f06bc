/**
 * The allocator's environment under the run queue (PercpuEnv, src/kernel/percpu-internal.ts).
 * It is built before the allocator, so that the allocator knows from the start whether lockdep
 * checks and whether the race detector watches; the scheduler attaches to it once it exists
 * and from then on it knows which task runs. It stamps every call the kernel makes with that
 * task: a lockdep_assert_held() miss goes to the event log, a shared-object access to the
 * detector.
 */
import type { PcpuChunk } from '../kernel/chunk.ts';
import type { AccessMode, KcsanWatch, KernelAccess, SharedKind } from '../kernel/kcsan.ts';
import type { PcpuTrace, PercpuEnv } from '../kernel/percpu-internal.ts';
import type { LockName } from '../kernel/steps.ts';

export interface TaskEnvOptions {
  /** route the kernel's lockdep_assert_held() misses into the event log (default true) */
  lockdep?: boolean;
  /** paths yield a watchpoint before touching shared objects: the scheduler's granularity is 'access' */
  watchpoints?: boolean;
  /** receives every access of a kernel path to a shared object */
  onAccess?: (a: KernelAccess) => void;
  /** chunk destructions, for the same watcher: every object of the chunk ends there */
  onDestroy?: (task: number, cpu: number, chunk: PcpuChunk, where: string) => void;
  /** record the allocator's tracepoints in the event log (for the reference checker) */
  tracepoints?: boolean;
}

/** The task running a kernel path, as the run queue books it. */
export interface RunningTask {
  readonly id: number;
  readonly cpu: number;
  /** the locks it holds */
  readonly held: readonly LockName[];
}

/** What the run queue tells the environment. */
export interface RunQueueView {
  /** the task whose kernel path is executing right now; null outside any task (boot, checkers) */
  running(): RunningTask | null;
  tick(): number;
  /** records that `task` reached lockdep_assert_held(lock) without holding it */
  lockdepMiss(task: RunningTask, lock: LockName, where: string): void;
  /** records a tracepoint `task` passed */
  traced(task: RunningTask, t: PcpuTrace): void;
  /** an access of the running task to a shared object (for a policy that weighs conflicts) */
  accessed?(kind: SharedKind, chunk: PcpuChunk | null, index: number, mode: AccessMode): void;
}

export class TaskEnv implements PercpuEnv {
  readonly lockdep_assert_held: ((lock: LockName, where: string) => void) | null;
  readonly kcsan: KcsanWatch | null;
  readonly tracepoint: ((t: PcpuTrace) => void) | null;
  /** paths yield watchpoints (the kernel's kcsan.delay) */
  readonly watchpoints: boolean;
  private queue: RunQueueView | null = null;

  constructor(opts: TaskEnvOptions = {}) {
    this.watchpoints = opts.watchpoints ?? false;
    this.lockdep_assert_held =
      opts.lockdep === false
        ? null
        : (lock, where) => {
            const q = this.queue;
            const t = q?.running();
            if (t && !t.held.includes(lock)) q!.lockdepMiss(t, lock, where);
          };
    // a tracepoint outside any task (boot) is not an operation of the running system
    this.tracepoint = opts.tracepoints
      ? (t) => {
          const r = this.queue?.running();
          if (r) this.queue!.traced(r, t);
        }
      : null;
    const { onAccess, onDestroy } = opts;
    // the watch costs a call per access, so it is there only when someone listens or paths
    // must yield watchpoints; accesses made outside any task (boot, checkers) are not the
    // kernel racing with itself
    this.kcsan =
      onAccess || onDestroy || this.watchpoints
        ? {
            delay: this.watchpoints,
            access: (kind, chunk, index, mode, where) => {
              const q = this.queue;
              const t = q?.running();
              if (t) q!.accessed?.(kind, chunk, index, mode);
              if (t && onAccess)
                onAccess({ task: t.id, cpu: t.cpu, tick: this.queue!.tick(), kind, chunk, index, mode, where });
            },
            destroyed: (chunk, where) => {
              const t = this.queue?.running();
              if (t && onDestroy) onDestroy(t.id, t.cpu, chunk, where);
            },
          }
        : null;
  }

  /** The run queue that drives the allocator's paths attaches before it runs any; there is one. */
  attach(queue: RunQueueView): void {
    if (this.queue) throw new Error('TaskEnv: a run queue is already attached (an allocator runs under one)');
    this.queue = queue;
  }
}
