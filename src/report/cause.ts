/**
 * What a report says about one violation beyond its line: the allocations it involves (the
 * area hit and, for a new area that is not zero, whose bytes those were before), the tasks
 * that allocated and freed them, and the part of a chunk to draw close up. Read from the
 * violation's data and the event log; nothing is asked of the allocator.
 */
import type { AllocationInfo } from '../check/isolation.ts';
import type { ActorEvent } from '../sim/events.ts';
import { formatEvent } from '../sim/format-event.ts';
import type { TimelineViolation } from './timeline.ts';

/** An allocation as the isolation checker names it. */
type Allocation = AllocationInfo;

/** The piece of a chunk to draw larger: the area hit, and the one that held its bytes before. */
export interface Zoom {
  chunk: string;
  area: { offset: number; size: number; label: string };
  previous: { offset: number; size: number; label: string } | null;
}

export interface Cause {
  /** sentences about the allocations involved */
  lines: string[];
  /** the tasks whose events tell the story (empty: none known) */
  tasks: number[];
  zoom: Zoom | null;
}

export const hex = (n: number): string => `0x${n.toString(16)}`;

function allocation(x: unknown): Allocation | null {
  if (typeof x !== 'object' || x === null) return null;
  const a = x as Partial<Allocation>;
  return typeof a.id === 'number' &&
    typeof a.ptr === 'number' &&
    typeof a.size === 'number' &&
    typeof a.offset === 'number' &&
    typeof a.cpu === 'number' &&
    (typeof a.chunk === 'number' || a.chunk === 'reserved')
    ? (a as Allocation)
    : null;
}

const who = (cpu: number): string => (cpu < 0 ? 'the reclaim worker' : `cpu ${cpu}`);

/** The allocation reply that handed out `ptr` last, at or before `tick`. */
function allocatedBy(events: readonly ActorEvent[], ptr: number, tick: number): ActorEvent | undefined {
  return events.findLast((e) => {
    if (e.type !== 'done' || e.tick > tick || !e.kind.startsWith('alloc')) return false;
    const replies = 'batch' in e.reply ? e.reply.batch : [e.reply];
    return replies.some((r) => r.ok && 'ptr' in r && r.ptr === ptr);
  });
}

/** The free of `ptr` asked for at `tick`, and its reply. */
function freedBy(
  events: readonly ActorEvent[],
  ptr: number,
  tick: number,
): { ask: ActorEvent; done: ActorEvent | undefined } | null {
  const ask = events.findLast(
    (e) =>
      e.type === 'arrive' &&
      e.tick === tick &&
      ((e.req.kind === 'free' && e.req.ptr === ptr) || (e.req.kind === 'free_batch' && e.req.ptrs.includes(ptr))),
  );
  if (!ask) return null;
  return { ask, done: events.find((e) => e.type === 'done' && e.task === ask.task && e.seq > ask.seq) };
}

/** One allocation's story: where it is, who made it, who freed it. */
function story(
  events: readonly ActorEvent[],
  a: Allocation,
  until: number,
  tasks: Set<number>,
): { where: string; made: string; freed: string } {
  const where = `${a.size} bytes at chunk ${a.chunk} offset ${a.offset} (${hex(a.offset)}), pointer ${hex(a.ptr)}`;
  const made = allocatedBy(events, a.ptr, a.freedTick ?? until);
  if (made) tasks.add(made.task);
  const madeText = `allocated by ${who(a.cpu)}${made ? ` (task ${made.task}, tick ${made.tick})` : ''}`;
  let freedText = a.live ? 'still live' : 'freed';
  if (a.freedTick !== undefined) {
    const f = freedBy(events, a.ptr, a.freedTick);
    if (f) {
      tasks.add(f.ask.task);
      freedText = `freed by ${who(f.ask.cpu)} (task ${f.ask.task}): asked at tick ${f.ask.tick}${f.done ? `, done at tick ${f.done.tick}` : ', not done when the run ended'}`;
    } else freedText = `freed at tick ${a.freedTick}`;
  }
  return { where, made: madeText, freed: freedText };
}

/** The cause of a violation, as far as its data and the event log tell it. */
export function causeOf(v: TimelineViolation, events: readonly ActorEvent[]): Cause {
  const tasks = new Set<number>();
  if (v.task !== undefined) tasks.add(v.task);
  const lines: string[] = [];
  const hit = allocation(v.data?.allocation);
  let zoom: Zoom | null = null;
  if (hit) {
    const s = story(events, hit, v.tick, tasks);
    lines.push(`the area: allocation #${hit.id}, ${s.where}, ${s.made}; ${s.freed}`);
    zoom = {
      chunk: String(hit.chunk),
      area: { offset: hit.offset, size: hit.size, label: `allocation #${hit.id}` },
      previous: null,
    };
  }
  const prev = v.data?.previous as { allocation?: unknown; unitCpu?: number; static?: boolean } | undefined;
  if (prev) {
    const before = allocation(prev.allocation);
    const copy = typeof prev.unitCpu === 'number' && prev.unitCpu >= 0 ? ` in cpu ${prev.unitCpu}'s copy` : '';
    if (before) {
      const s = story(events, before, v.tick, tasks);
      lines.push(`its bytes were allocation #${before.id}'s${copy}: ${s.where}, ${s.made}; ${s.freed}`);
      if (zoom && String(before.chunk) === zoom.chunk)
        zoom.previous = { offset: before.offset, size: before.size, label: `allocation #${before.id} (before)` };
    } else if (prev.static) lines.push(`its bytes were the kernel image's static percpu section${copy}`);
    else lines.push('no allocation held its bytes before: they are what the page held when it was populated');
  }
  return { lines, tasks: [...tasks].sort((a, b) => a - b), zoom };
}

/** Steps that only say who the scheduler ran: left out when the events are filtered to tasks. */
const SCHEDULING = new Set(['run', 'preempt']);

/** At most this many lines of events under one violation. */
export const EXCERPT_LINES = 40;

/**
 * The events under a violation: those of the tasks involved (without the scheduler's own
 * steps) up to the tick it was found at, or, when no task is known, the events just before it.
 */
export function excerpt(events: readonly ActorEvent[], tick: number, tasks: readonly number[]): string[] {
  if (tasks.length) {
    const set = new Set(tasks);
    const mine = events.filter((e) => e.tick <= tick && set.has(e.task) && !SCHEDULING.has(e.type));
    if (mine.length) return mine.slice(-EXCERPT_LINES).map(formatEvent);
  }
  let i = events.findLastIndex((e) => e.tick <= tick);
  if (i < 0) i = 0;
  return events.slice(Math.max(0, i - 14), i + 4).map(formatEvent);
}
