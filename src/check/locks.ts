/**
 * A lockdep-style checker of the 2.6.36 locking rules. It follows the actor's events only;
 * it never touches the allocator.
 *
 *  - slot lists and area maps are touched under pcpu_lock (the kernel's lockdep_assert_held
 *    calls report a miss as a 'lockdep' event);
 *  - map extension, chunk creation, population, depopulation and destruction run under
 *    pcpu_alloc_mutex, and nothing sleeps while pcpu_lock is held;
 *  - locks are always taken in one order (pcpu_alloc_mutex, then pcpu_lock);
 *  - percpu-vm's scratch page array has one user at a time;
 *  - a deferred-work wake-up under pcpu_lock is the kernel's known lock dependency (anchors
 *    §4 #10, fixed in 2019): recorded as known, and a violation only in strict mode.
 */
import type { ActorEvent } from '../sim/events.ts';
import { LockModel } from './lock-model.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { SleepPoint } from '../kernel/steps.ts';

/** Who runs a task, as every report names it: a CPU, or the reclaim worker. */
const who = (cpu: number): string => (cpu < 0 ? 'kworker' : `cpu ${cpu}`);

export type LockViolationKind =
  | 'not-held' // a map or slot list touched without pcpu_lock
  | 'sleep-under-spinlock' // a sleeping step (or the mutex) while holding pcpu_lock
  | 'sleep-without-mutex' // creation/population/extension/reclaim outside pcpu_alloc_mutex
  | 'lock-order' // two locks taken in both orders
  | 'scratch-shared' // two paths in percpu-vm's scratch page array at once
  | 'wakeup-under-spinlock'; // schedule_work() with pcpu_lock held (known, 2.6.36)

export interface LockViolation {
  checker: 'locks';
  kind: LockViolationKind;
  task: number;
  cpu: number;
  seq: number;
  tick: number;
  message: string;
}

/** The sleeping points that need pcpu_alloc_mutex held. */
const NEEDS_MUTEX: readonly SleepPoint[] = [
  'pcpu_extend_area_map',
  'pcpu_create_chunk',
  'pcpu_populate_chunk',
  'pcpu_depopulate_chunk',
  'pcpu_destroy_chunk',
];

export class LockChecker {
  readonly violations: LockViolation[] = [];
  /** known 2.6.36 dependencies (wake-ups under pcpu_lock) when not strict */
  readonly known: LockViolation[] = [];
  /** who holds what, from the same events (the engine's own model reports scheduler faults) */
  private readonly model = new LockModel();
  /** lock-order edges seen: "a>b" means b was taken while a was held */
  private readonly edges = new Set<string>();
  private lastScratchOverlaps = 0;

  constructor(private readonly opts: { strict?: boolean; pc?: Percpu } = {}) {}

  private add(e: ActorEvent, kind: LockViolationKind, message: string): void {
    const v: LockViolation = { checker: 'locks', kind, task: e.task, cpu: e.cpu, seq: e.seq, tick: e.tick, message };
    if (kind === 'wakeup-under-spinlock' && !this.opts.strict) this.known.push(v);
    else this.violations.push(v);
  }

  observe(e: ActorEvent): void {
    // what the task held before this event
    const h = e.task >= 0 ? this.model.holds(e.task) : [];
    switch (e.type) {
      case 'lock': {
        for (const other of h) {
          const edge = `${other}>${e.lock}`;
          if (this.edges.has(`${e.lock}>${other}`))
            this.add(
              e,
              'lock-order',
              `task ${e.task} took ${e.lock} while holding ${other}; the opposite order was seen before`,
            );
          this.edges.add(edge);
        }
        if (e.lock === 'pcpu_alloc_mutex' && h.includes('pcpu_lock'))
          this.add(
            e,
            'sleep-under-spinlock',
            `task ${e.task} (${who(e.cpu)}) took pcpu_alloc_mutex, which may sleep, while holding pcpu_lock`,
          );
        break;
      }
      case 'sleep': {
        if (h.includes('pcpu_lock'))
          this.add(
            e,
            'sleep-under-spinlock',
            `task ${e.task} (${who(e.cpu)}) sleeps in ${e.at} while holding pcpu_lock`,
          );
        if (NEEDS_MUTEX.includes(e.at) && !h.includes('pcpu_alloc_mutex'))
          this.add(e, 'sleep-without-mutex', `task ${e.task} (${who(e.cpu)}) runs ${e.at} without pcpu_alloc_mutex`);
        break;
      }
      case 'lockdep':
        this.add(e, 'not-held', `task ${e.task} (${who(e.cpu)}) in ${e.where} without ${e.lock} (lockdep_assert_held)`);
        break;
      case 'schedule_work':
        if (e.held.includes('pcpu_lock'))
          this.add(
            e,
            'wakeup-under-spinlock',
            `task ${e.task} (${who(e.cpu)}) schedules the reclaim work while holding pcpu_lock (pcpu_lock -> workqueue dependency)`,
          );
        break;
      default:
        break;
    }
    this.model.observe(e);
    const vm = this.opts.pc?.backend as { scratch_overlaps?: number } | undefined;
    if (vm?.scratch_overlaps !== undefined && vm.scratch_overlaps > this.lastScratchOverlaps) {
      this.lastScratchOverlaps = vm.scratch_overlaps;
      this.add(
        e,
        'scratch-shared',
        `percpu-vm's scratch page array was taken by a second path while in use (after event ${e.seq})`,
      );
    }
  }
}
