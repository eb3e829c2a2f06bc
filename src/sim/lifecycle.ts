/**
 * The allocator's lifecycle as a pure transition function, in start_kernel()'s order:
 *
 *   off --BOOT--> early --SLAB_ONLINE--> slabOnline --(init_late admitted)--> lateInit
 *       --LATE_DONE--> running --SHUTDOWN--> draining --SHUTDOWN--> shutdown
 *
 *   early       setup_per_cpu_areas() has run; slab is not up, so area maps cannot grow
 *   slabOnline  mm_init() has run; percpu_init_late() has not
 *   lateInit    percpu_init_late() is on the run queue, swapping the early maps
 *
 * Every state answers every request: admission() says whether a request becomes a task or is
 * refused, with the reason in the kernel's words. The XState machine (src/actor/machine.ts)
 * is generated from these tables. (The trace replayer keeps the wording its format pins.)
 */
import type { Request } from './events.ts';

export const LIFECYCLE_STATES = ['off', 'early', 'slabOnline', 'lateInit', 'running', 'draining', 'shutdown'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

/** The machine's own steps (requests are the other input; see admission()). */
export type LifecycleStep = 'BOOT' | 'SLAB_ONLINE' | 'LATE_INIT' | 'LATE_DONE' | 'SHUTDOWN';

/** Where each step leads from each state; a step missing here is refused in that state. */
export const LIFECYCLE_STEPS: Readonly<Record<LifecycleState, Partial<Record<LifecycleStep, LifecycleState>>>> = {
  off: { BOOT: 'early' },
  early: { SLAB_ONLINE: 'slabOnline' },
  slabOnline: { LATE_INIT: 'lateInit' },
  lateInit: { LATE_DONE: 'running' },
  running: { SHUTDOWN: 'draining' },
  draining: { SHUTDOWN: 'shutdown' },
  shutdown: {},
};

/** What a request is called in a refusal. */
function what(req: Request): string {
  if (req.kind === 'free' || req.kind === 'free_batch') return 'free_percpu';
  if (req.kind === 'init_late') return 'percpu_init_late';
  return 'allocation';
}

/** Admitted (and the lifecycle step admitting it takes, if any), or refused with the reason. */
export type Admission = { admit: true; step?: LifecycleStep } | { admit: false; error: string };

/**
 * Whether a request is admitted in `state`, and the lifecycle step admitting it takes (only
 * percpu_init_late moves the lifecycle on). The machine's own clean-up at shutdown
 * (`internal` requests) still runs while draining.
 */
export function admission(state: LifecycleState, req: Request): Admission {
  const refuse = (error: string): Admission => ({ admit: false, error });
  const admit: Admission = { admit: true };
  switch (state) {
    case 'off':
      return refuse(`percpu: ${what(req)} before setup_per_cpu_areas`);
    case 'early':
      return req.kind === 'init_late' ? refuse('percpu: percpu_init_late before slab is online (mm_init)') : admit;
    case 'slabOnline':
      return req.kind === 'init_late' ? { admit: true, step: 'LATE_INIT' } : admit;
    case 'lateInit':
      return req.kind === 'init_late' ? refuse('percpu: percpu_init_late is already running') : admit;
    case 'running':
      return req.kind === 'init_late' ? refuse('percpu: percpu_init_late has already run') : admit;
    case 'draining':
      return req.internal === true ? admit : refuse(`percpu: ${what(req)} while the machine is shutting down`);
    case 'shutdown':
      return refuse(`percpu: ${what(req)} after shutdown`);
  }
}
