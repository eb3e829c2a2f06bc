/**
 * What the CPUs were told, followed from the actor's events: each allocation as its reply
 * arrives, and each free as it is asked for (the caller gives the area up when it calls
 * free_percpu(); the kernel may hand it out again before that free replies, since a batch
 * frees one area at a time). The checkers that keep their own record of live areas share it.
 */
import type { ActorEvent, AllocReply, Request } from '../sim/events.ts';

export interface ReplyHandlers {
  /** one allocation's outcome, with what was asked for */
  allocated(cpu: number, tick: number, ask: { size: number; align: number }, reply: AllocReply): void;
  /** `tick`: when the free was asked for */
  freed(ptr: number, tick: number): void;
}

export class ReplyFollower {
  private readonly requests = new Map<number, Request>();

  constructor(private readonly on: ReplyHandlers) {}

  observe(e: ActorEvent): void {
    if (e.type === 'arrive') {
      this.requests.set(e.task, e.req);
      if (e.req.kind === 'free') this.on.freed(e.req.ptr, e.tick);
      else if (e.req.kind === 'free_batch') for (const p of e.req.ptrs) this.on.freed(p, e.tick);
    } else if (e.type === 'done' || e.type === 'bug') {
      const req = this.requests.get(e.task);
      this.requests.delete(e.task);
      if (!req || e.type === 'bug') return;
      const r = e.reply;
      if (req.kind === 'alloc') this.on.allocated(req.cpu, e.tick, req, r as AllocReply);
      else if (req.kind === 'alloc_batch' && 'batch' in r)
        r.batch.forEach((b, i) => this.on.allocated(req.cpu, e.tick, req.items[i]!, b));
    }
  }
}
