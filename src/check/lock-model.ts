/**
 * Who holds which lock, learned from the scheduler's events alone, and checked against the
 * scheduler's own books. The lock and race checkers ask this model, never the kernel code,
 * which locks a task holds.
 *
 * A disagreement is the scheduler's fault, not the kernel path's: a lock granted to a second
 * task while its owner still holds it, a release by a task that does not hold the lock, a
 * task that runs while it waits for a lock it was never granted, or books that say something
 * other than the events did.
 */
import type { ActorEvent } from '../sim/events.ts';
import type { LockName } from '../kernel/steps.ts';

export const LOCKS: readonly LockName[] = ['pcpu_alloc_mutex', 'pcpu_lock'];

export interface SchedulerFault {
  checker: 'scheduler';
  kind: 'lock-ownership';
  task: number;
  cpu: number;
  seq: number;
  tick: number;
  message: string;
}

/** What the scheduler says about itself, to compare with its events. */
export interface SchedulerBooks {
  lockOwners(): Record<LockName, number | null>;
  heldBy(task: number): readonly LockName[];
}

export class LockModel {
  readonly faults: SchedulerFault[] = [];
  private readonly owner: Record<LockName, number | null> = { pcpu_alloc_mutex: null, pcpu_lock: null };
  private readonly held = new Map<number, LockName[]>();
  private readonly waiting = new Map<number, LockName>();
  /** the books disagreed once: every later event would say so again */
  private booksDiffer = false;

  constructor(private readonly books: SchedulerBooks | null = null) {}

  /** The locks `task` holds, in the order it took them. */
  holds(task: number): readonly LockName[] {
    return this.held.get(task) ?? [];
  }

  ownerOf(lock: LockName): number | null {
    return this.owner[lock];
  }

  private fault(e: ActorEvent, message: string): void {
    if (this.faults.length < 50)
      this.faults.push({
        checker: 'scheduler',
        kind: 'lock-ownership',
        task: e.task,
        cpu: e.cpu,
        seq: e.seq,
        tick: e.tick,
        message: `scheduler: ${message}`,
      });
  }

  observe(e: ActorEvent): void {
    switch (e.type) {
      case 'lock': {
        const o = this.owner[e.lock];
        if (o !== null && o !== e.task)
          this.fault(
            e,
            `${e.lock} was granted to task ${e.task} while task ${o} still holds it (mutual exclusion broken)`,
          );
        this.owner[e.lock] = e.task;
        let h = this.held.get(e.task);
        if (!h) this.held.set(e.task, (h = []));
        h.push(e.lock);
        this.waiting.delete(e.task);
        break;
      }
      case 'unlock': {
        if (this.owner[e.lock] !== e.task)
          this.fault(e, `task ${e.task} released ${e.lock}, which task ${this.owner[e.lock] ?? 'none'} holds`);
        else this.owner[e.lock] = null;
        const h = this.held.get(e.task);
        const i = h ? h.lastIndexOf(e.lock) : -1;
        if (i >= 0) h!.splice(i, 1);
        break;
      }
      case 'block':
        if (this.owner[e.lock] !== e.owner)
          this.fault(
            e,
            `task ${e.task} waits for ${e.lock} "held by task ${e.owner}", but task ${this.owner[e.lock] ?? 'none'} holds it`,
          );
        this.waiting.set(e.task, e.lock);
        break;
      case 'run':
        if (this.waiting.has(e.task))
          this.fault(
            e,
            `task ${e.task} runs while it waits for ${this.waiting.get(e.task)}, which it was never granted`,
          );
        break;
      case 'done':
      case 'bug':
        this.held.delete(e.task);
        this.waiting.delete(e.task);
        break;
      default:
        break;
    }
    if (this.books && !this.booksDiffer) this.compare(e);
  }

  /** The scheduler's books must say what its events said. */
  private compare(e: ActorEvent): void {
    const owners = this.books!.lockOwners();
    for (const l of LOCKS)
      if (owners[l] !== this.owner[l]) {
        this.booksDiffer = true;
        this.fault(
          e,
          `its books say task ${owners[l] ?? 'none'} holds ${l}, its events say task ${this.owner[l] ?? 'none'} (after event #${e.seq} ${e.type})`,
        );
      }
    if (e.task < 0 || this.booksDiffer) return;
    const books = [...this.books!.heldBy(e.task)].sort().join(', ');
    const events = [...this.holds(e.task)].sort().join(', ');
    if (books !== events) {
      this.booksDiffer = true;
      this.fault(
        e,
        `its books say task ${e.task} holds [${books}], its events say [${events}] (after event #${e.seq} ${e.type})`,
      );
    }
  }
}
