/**
 * The boot order, checked from the event log alone: the lifecycle states are entered in
 * start_kernel()'s order with none skipped, percpu_init_late() is admitted exactly once and
 * only once slab is online, CPU work is admitted only between boot and shutdown, and a
 * legal request is never refused.
 *
 * The checker keeps its own table of what each state allows, written from the kernel's
 * boot sequence; it never asks the actor's lifecycle function (src/sim/lifecycle.ts), so
 * an admission bug there is something it can see.
 */
import type { ActorEvent, Request } from '../sim/events.ts';

export interface LifecycleViolation {
  checker: 'lifecycle';
  kind: 'order' | 'admitted' | 'refused' | 'skipped';
  cpu: number;
  tick: number;
  message: string;
}

/** The states in the order the kernel passes through them. */
const ORDER = ['boot', 'early', 'slabOnline', 'lateInit', 'running', 'draining', 'shutdown'];

/** Where a CPU's own work (allocations and frees) may be admitted. */
const CPU_WORK = new Set(['early', 'slabOnline', 'lateInit', 'running']);

const isCpuWork = (r: Request): boolean =>
  r.kind === 'alloc' || r.kind === 'alloc_batch' || r.kind === 'free' || r.kind === 'free_batch';

export class LifecycleChecker {
  readonly violations: LifecycleViolation[] = [];
  private state = 'off';
  private lateInits = 0;
  private lateInitDone = false;

  private add(kind: LifecycleViolation['kind'], e: ActorEvent, message: string): void {
    if (this.violations.length < 50)
      this.violations.push({ checker: 'lifecycle', kind, cpu: e.cpu, tick: e.tick, message });
  }

  observe(e: ActorEvent): void {
    switch (e.type) {
      case 'lifecycle': {
        const from = ORDER.indexOf(this.state);
        const to = ORDER.indexOf(e.state);
        if (to <= from && this.state !== 'off')
          this.add('order', e, `lifecycle went from ${this.state} back to ${e.state}`);
        else if (e.state === 'running' && !this.lateInitDone)
          this.add(
            'skipped',
            e,
            'running without percpu_init_late(): the first and reserved chunks keep their __initdata area maps',
          );
        else if (to > from + 1 && !(this.state === 'slabOnline' && e.state === 'running'))
          this.add('order', e, `lifecycle went from ${this.state} to ${e.state}, skipping ${ORDER[from + 1]}`);
        this.state = e.state;
        break;
      }
      case 'arrive':
        if (e.req.kind === 'init_late') {
          this.lateInits++;
          if (this.lateInits > 1) this.add('admitted', e, 'percpu_init_late() admitted a second time');
          else if (this.state !== 'slabOnline')
            this.add('admitted', e, `percpu_init_late() admitted in state ${this.state}, before slab is online`);
        } else if (isCpuWork(e.req) && !e.req.internal && !CPU_WORK.has(this.state))
          this.add('admitted', e, `cpu ${e.cpu}'s ${e.req.kind} admitted in state ${this.state}`);
        break;
      case 'refuse':
        if (isCpuWork(e.req) && !e.req.internal && CPU_WORK.has(this.state))
          this.add('refused', e, `cpu ${e.cpu}'s ${e.req.kind} refused in state ${this.state}: ${e.error}`);
        else if (e.req.kind === 'init_late' && this.state === 'slabOnline' && this.lateInits === 0)
          this.add('refused', e, `percpu_init_late() refused once slab is online: ${e.error}`);
        break;
      case 'done':
        if (e.kind === 'init_late' && e.reply.ok) this.lateInitDone = true;
        break;
      default:
        break;
    }
  }
}
