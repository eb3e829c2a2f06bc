/**
 * The points where a kernel path takes or drops a lock, sleeps, or schedules work.
 *
 * Kernel paths here are generators that yield these steps. Between two steps a path runs
 * exactly as the kernel's critical section would, synchronously. Whoever drives the
 * generator decides what happens at each step: the synchronous driver (src/sim/drive-sync.ts)
 * just keeps the books, while the run queue (src/sim/scheduler.ts) lets other CPUs' requests
 * run at every lock drop and sleeping point, in an order its seeded PRNG chooses.
 */
export type LockName = 'pcpu_alloc_mutex' | 'pcpu_lock';

/** Where the kernel may sleep (GFP_KERNEL allocations, vmalloc, page table updates). */
export type SleepPoint =
  'pcpu_extend_area_map' | 'pcpu_create_chunk' | 'pcpu_populate_chunk' | 'pcpu_depopulate_chunk' | 'pcpu_destroy_chunk';

export type KStep =
  | { readonly t: 'lock'; readonly lock: LockName }
  | { readonly t: 'unlock'; readonly lock: LockName }
  | { readonly t: 'sleep'; readonly at: SleepPoint; readonly chunk: number }
  | { readonly t: 'schedule_work'; readonly work: 'pcpu_reclaim' }
  | { readonly t: 'watchpoint'; readonly where: string };

export type KTask<R> = Generator<KStep, R, void>;

export const MUTEX_LOCK: KStep = Object.freeze({ t: 'lock', lock: 'pcpu_alloc_mutex' });
export const MUTEX_UNLOCK: KStep = Object.freeze({ t: 'unlock', lock: 'pcpu_alloc_mutex' });
export const SPIN_LOCK: KStep = Object.freeze({ t: 'lock', lock: 'pcpu_lock' });
export const SPIN_UNLOCK: KStep = Object.freeze({ t: 'unlock', lock: 'pcpu_lock' });
export const SCHEDULE_RECLAIM: KStep = Object.freeze({ t: 'schedule_work', work: 'pcpu_reclaim' });

/**
 * A point just before a path touches shared kernel objects, where a fine-grained scheduler
 * may let other tasks run (KCSAN's watchpoint delay). Paths yield it only when the
 * allocator's environment asks for it (kcsan.delay), so the synchronous replay never sees one.
 */
export function watchpoint(where: string): KStep {
  return { t: 'watchpoint', where };
}

export function sleepStep(at: SleepPoint, chunk: number): KStep {
  return { t: 'sleep', at, chunk };
}
