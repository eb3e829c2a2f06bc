/**
 * Bugs brought into a booted allocator for the checker tests, by class rather than by name:
 * a path that no longer takes a lock, or that drops it and takes it again with nothing in
 * between. They wrap the kernel path's generator, so they reach every function it calls.
 */
import type { Percpu } from '../../src/kernel/percpu.ts';
import type { KStep, KTask, LockName } from '../../src/kernel/steps.ts';

export type KernelPath = 'pcpu_alloc' | 'free_percpu' | 'pcpu_reclaim' | 'pcpu_extend_area_map' | 'percpu_init_late';

/** Rewrites the steps a path yields; `edit` returns the steps to yield instead of one. */
function rewrite(pc: Percpu, path: KernelPath, edit: (step: KStep) => KStep[]): void {
  const original = (pc[path] as (...a: unknown[]) => KTask<unknown>).bind(pc);
  (pc as unknown as Record<string, unknown>)[path] = function* (...args: unknown[]): KTask<unknown> {
    const inner = original(...args);
    let r = inner.next();
    while (!r.done) {
      for (const s of edit(r.value)) yield s;
      r = inner.next();
    }
    return r.value;
  };
}

/** The path (and everything it calls) never takes or drops `lock`. */
export function withoutLock(pc: Percpu, path: KernelPath, lock: LockName): void {
  rewrite(pc, path, (s) => ((s.t === 'lock' || s.t === 'unlock') && s.lock === lock ? [] : [s]));
}

/**
 * The path still takes and drops `lock`, but lets go at once each time and takes it again
 * just before it lets go for real: its critical sections run in a gap with nothing asleep.
 */
export function withGap(pc: Percpu, path: KernelPath, lock: LockName): void {
  const take: KStep = { t: 'lock', lock };
  const drop: KStep = { t: 'unlock', lock };
  rewrite(pc, path, (s) => ((s.t === 'lock' || s.t === 'unlock') && s.lock === lock ? [take, drop] : [s]));
}

/**
 * The path takes its two locks the other way round: wherever it takes pcpu_alloc_mutex and
 * then pcpu_lock with nothing between, it takes pcpu_lock first.
 */
export function withInvertedOrder(pc: Percpu, path: KernelPath): void {
  let held: KStep | null = null;
  rewrite(pc, path, (s) => {
    if (s.t === 'lock' && s.lock === 'pcpu_alloc_mutex') {
      held = s;
      return [];
    }
    const out = held && s.t === 'lock' && s.lock === 'pcpu_lock' ? [s, held] : held ? [held, s] : [s];
    held = null;
    return out;
  });
}
