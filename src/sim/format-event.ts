/** Actor events as one line of text each, for histories, reports and timelines. */
import type { ActorEvent } from './events.ts';

/** One line per event: sequence number, tick, who, task and what happened. */
export function formatEvent(e: ActorEvent): string {
  const who = e.cpu === -1 ? 'kworker' : `cpu${e.cpu}`;
  const head = `#${e.seq} t${e.tick} ${who} task ${e.task}`;
  switch (e.type) {
    case 'arrive':
    case 'refuse':
      return `${head} ${e.type} ${e.req.kind}${'size' in e.req ? ` size=${e.req.size} align=${e.req.align}` : ''}${'ptr' in e.req ? ` ptr=${e.req.ptr.toString(16)}` : ''}`;
    case 'lock':
    case 'unlock':
      return `${head} ${e.type} ${e.lock}`;
    case 'block':
      return `${head} waits for ${e.lock} (held by task ${e.owner})`;
    case 'sleep':
      return `${head} sleeps in ${e.at}${e.chunk >= 0 ? ` (chunk ${e.chunk})` : ''} until t${e.until}`;
    case 'done':
      return `${head} done ${e.kind}: ${JSON.stringify(e.reply)}`;
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
    default:
      return `${head} ${e.type}`;
  }
}
