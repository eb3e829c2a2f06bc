/** Actor events as one line of text each, for histories, reports and timelines. */
import type { PcpuTrace } from '../kernel/percpu-internal.ts';
import type { ActorEvent } from './events.ts';

/** One line per event: sequence number, tick, who, task and what happened. */
export function formatEvent(e: ActorEvent): string {
  return formatEventNamed(e);
}

/**
 * formatEvent, with tasks named as schedules name them (0.64: CPU 0's 65th request; k.0: the
 * reclaim worker's first) where `names` has a name for them.
 */
export function formatEventNamed(e: ActorEvent, names?: ReadonlyMap<number, string>): string {
  const who = e.cpu === -1 ? 'kworker' : `cpu${e.cpu}`;
  const task = (t: number): string => names?.get(t) ?? String(t);
  const head = `#${e.seq} t${e.tick} ${who} task ${task(e.task)}`;
  switch (e.type) {
    case 'arrive':
    case 'refuse':
      return `${head} ${e.type} ${e.req.kind}${'size' in e.req ? ` size=${e.req.size} align=${e.req.align}` : ''}${'ptr' in e.req ? ` ptr=0x${e.req.ptr.toString(16)}` : ''}${'ptrs' in e.req ? ` ptrs=${e.req.ptrs.map((p) => `0x${p.toString(16)}`).join(',')}` : ''}`;
    case 'lock':
    case 'unlock':
      return `${head} ${e.type} ${e.lock}`;
    case 'block':
      return `${head} waits for ${e.lock} (held by task ${task(e.owner)})`;
    case 'sleep':
      return `${head} sleeps in ${e.at}${e.chunk >= 0 ? ` (chunk ${e.chunk})` : ''} until t${e.until}`;
    case 'done':
      // pointers in hex, as every other line prints them
      return `${head} done ${e.kind}: ${JSON.stringify(e.reply, (k, v: unknown) => (k === 'ptr' && typeof v === 'number' ? `0x${v.toString(16)}` : v))}`;
    case 'bug':
      return `${head} BUG ${e.bug.code}: ${e.bug.message}`;
    case 'lockdep':
      return `${head} lockdep: ${e.where} without ${e.lock}`;
    case 'schedule_work':
      return `${head} schedule_work(pcpu_reclaim) holding [${e.held.join(', ')}]`;
    case 'lifecycle':
      return `${head} lifecycle ${e.state}`;
    case 'preempt':
      return `${head} preempted ${e.at}`;
    case 'kernel':
      return `${head} trace ${traceLine(e.trace)}`;
    default:
      return `${head} ${e.type}`;
  }
}

/** A tracepoint in a few words: "walk 24/8 -> chunk 1 off 4096", "freed chunk 0 off 28192". */
export function traceLine(t: PcpuTrace): string {
  const chunk = (c: number): string => (c === -1 ? 'reserved' : `chunk ${c}`);
  switch (t.op) {
    case 'walk': {
      const what = `walk ${t.size}/${t.align}${t.reserved ? ' reserved' : ''} ->`;
      if (t.outcome === 'area') return `${what} ${chunk(t.chunk)} off ${t.off}`;
      if (t.outcome === 'extend') return `${what} extend ${chunk(t.chunk)} to ${t.to}`;
      if (t.outcome === 'create') return `${what} create a chunk`;
      return `${what} fail: ${t.reason}`;
    }
    case 'extended':
      return `extended ${chunk(t.chunk)} to ${t.to}`;
    case 'created':
      return `created ${chunk(t.chunk)}`;
    case 'populated':
      return `populated ${chunk(t.chunk)} off ${t.off} size ${t.size} (pages ${t.pages.join(',') || 'none new'})`;
    case 'alloc-failed':
      return `allocation failed: ${t.reason}`;
    case 'area-freed':
      return `gave back ${chunk(t.chunk)} off ${t.off}`;
    case 'freed':
      return `freed ${chunk(t.chunk)} off ${t.off}${t.reclaim ? ', reclaim scheduled' : ''}`;
    case 'reclaim':
      return `reclaim takes ${t.destroyed.map(chunk).join(', ') || 'nothing'}`;
    case 'destroyed':
      return `destroyed ${chunk(t.chunk)}`;
    case 'init-late':
      return `percpu_init_late done${t.early.length ? `, early maps left: ${t.early.map(chunk).join(', ')}` : ''}`;
  }
}
