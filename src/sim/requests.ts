/**
 * Which kernel path each request runs, and what it replies. Allocations and frees also keep
 * the ledger of live allocations.
 */
import { RESERVED_CHUNK_ID } from '../kernel/chunk.ts';
import type { AllocResult, Percpu } from '../kernel/percpu.ts';
import type { KTask } from '../kernel/steps.ts';
import type { AllocReply, Reply, Request } from './events.ts';
import type { Ledger } from './ledger.ts';

/** The kernel path of one request, as a task the run queue steps through. */
export function* requestPath(pc: Percpu, req: Request, live: Ledger): KTask<Reply> {
  switch (req.kind) {
    case 'alloc':
      return allocReply(live, req.cpu, req.size, yield* pc.pcpu_alloc(req.size, req.align, req.reserved ?? false));
    case 'alloc_batch': {
      const batch: AllocReply[] = [];
      for (const it of req.items)
        batch.push(allocReply(live, req.cpu, it.size, yield* pc.pcpu_alloc(it.size, it.align, it.reserved ?? false)));
      return { ok: true, batch };
    }
    case 'free':
      yield* pc.free_percpu(req.ptr, req.cpu);
      live.freed(req.ptr);
      return { ok: true, freed: 1 };
    case 'free_batch':
      for (const p of req.ptrs) {
        yield* pc.free_percpu(p, req.cpu);
        live.freed(p);
      }
      return { ok: true, freed: req.ptrs.length };
    case 'init_late':
      yield* pc.percpu_init_late();
      return { ok: true };
    case 'reclaim':
      yield* pc.pcpu_reclaim();
      return { ok: true };
    case 'teardown':
      return { ok: true, freed: (yield* pc.pcpu_teardown()).length };
  }
}

function allocReply(live: Ledger, cpu: number, size: number, r: AllocResult): AllocReply {
  if (!r.ptr) return { ok: false, error: r.error ?? 'allocation failed' };
  const chunk = r.chunk!.id === RESERVED_CHUNK_ID ? -1 : r.chunk!.id;
  live.allocated(r.ptr, { cpu, size, chunk, off: r.off });
  return { ok: true, ptr: r.ptr, chunk, off: r.off, size };
}
