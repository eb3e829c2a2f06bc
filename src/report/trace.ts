/**
 * A timeline in the Chrome Trace Event format (JSON object form), as Perfetto UI and
 * chrome://tracing open it:
 *
 *   pid 1  simulated CPUs   one track per CPU: its workload phases, and each request as a
 *                           span from the tick it arrived to the tick its reply was sent
 *   pid 2  allocator actor  each kernel task as a span on a task lane, with its sleeps and
 *                           lock waits nested inside; lifecycle states as instants; counters
 *   pid 3  locks            one track per lock: who held it, when
 *
 * Flows join each CPU's request to the task that served it; violations are global instants.
 *
 * Time is the scheduler's: the n events of tick t are spread evenly over it, the r-th at
 * t*1000 + r*1000/n microseconds, so a trace is a pure function of the event log (and so of
 * the seed), events of one tick keep their order, and a step within one tick is drawn as wide
 * as the tick allows rather than as a 1 us sliver.
 *
 * Names stay few so that Perfetto and chrome://tracing group them: a lock's slices are all
 * named after the lock (who held it is in args), a counter is named once (Perfetto names a
 * counter track "name key", so the key is the unit), and the machine's own requests at
 * shutdown are named "shutdown", apart from the workload's teardown() phase.
 */
import type { ActorEvent } from '../sim/events.ts';
import type { Timeline } from './timeline.ts';

export interface TraceEvent {
  name: string;
  ph: 'B' | 'E' | 'i' | 'C' | 's' | 'f' | 'M';
  ts: number;
  pid: number;
  tid: number;
  cat?: string;
  id?: number;
  s?: 'g' | 'p' | 't';
  bp?: 'e';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms' | 'ns';
  otherData: Record<string, string | number>;
}

export const PID_CPUS = 1;
export const PID_ACTOR = 2;
export const PID_LOCKS = 3;
/** one tick, in trace microseconds */
export const TICK_US = 1000;

interface Span {
  name: string;
  start: number;
  end: number;
  cat: string;
  args?: Record<string, unknown>;
  children?: Span[];
  /** flow ids that start (s) or end (f) at this span's start */
  flowOut?: number;
  flowIn?: number;
}

/** Microseconds of each event: the tick, plus its share of the tick by its rank among that tick's events. */
function clock(events: readonly ActorEvent[]): Map<number, number> {
  const ts = new Map<number, number>();
  for (let i = 0; i < events.length;) {
    const tick = events[i]!.tick;
    let j = i;
    while (j < events.length && events[j]!.tick === tick) j++;
    // the last event of a tick keeps a microsecond before the next tick, for what ends just after it
    const step = (TICK_US - 1) / (j - i);
    for (let r = 0; i + r < j; r++) ts.set(events[i + r]!.seq, tick * TICK_US + Math.round(r * step * 1000) / 1000);
    i = j;
  }
  return ts;
}

/** The counters, each under one name with its unit as the one key of its args. */
const COUNTERS = [
  ['chunks', 'chunks', 'count'],
  ['populated_pages', 'populated pages', 'count'],
  ['free_bytes', 'free', 'bytes'],
  ['live_areas', 'live areas', 'count'],
] as const;

const hexPtr = (p: unknown): unknown => (typeof p === 'number' ? `0x${p.toString(16)}` : p);

/**
 * Places spans on lanes so that spans on one lane nest: a span goes on the first lane whose
 * innermost open span may hold it (`holds`, and it lasts long enough) or which has none open.
 * Children stay with their parent.
 */
function laneOf(spans: Span[], holds: (outer: Span) => boolean = () => false): Span[][] {
  const sorted = [...spans].sort((a, b) => a.start - b.start || b.end - a.end);
  const lanes: { stack: Span[]; spans: Span[] }[] = [];
  for (const s of sorted) {
    let lane = lanes.find((l) => {
      while (l.stack.length && l.stack.at(-1)!.end <= s.start) l.stack.pop();
      const top = l.stack.at(-1);
      return !top || (holds(top) && top.start <= s.start && top.end >= s.end);
    });
    if (!lane) lanes.push((lane = { stack: [], spans: [] }));
    lane.stack.push(s);
    lane.spans.push(s);
  }
  return lanes.map((l) => l.spans);
}

/** B and E events of spans that nest (and their children), in order. */
function emitLane(out: TraceEvent[], spans: Span[], pid: number, tid: number): void {
  const flat: { s: Span; depth: number }[] = [];
  const walk = (s: Span, depth: number): void => {
    flat.push({ s, depth });
    for (const c of s.children ?? []) walk(c, depth + 1);
  };
  for (const s of spans) walk(s, 0);
  flat.sort((a, b) => a.s.start - b.s.start || b.s.end - a.s.end || a.depth - b.depth);
  const open: Span[] = [];
  const close = (until: number): void => {
    while (open.length && open.at(-1)!.end <= until) {
      const s = open.pop()!;
      out.push({ name: s.name, ph: 'E', ts: s.end, pid, tid, cat: s.cat });
    }
  };
  for (const { s } of flat) {
    close(s.start);
    out.push({ name: s.name, ph: 'B', ts: s.start, pid, tid, cat: s.cat, ...(s.args ? { args: s.args } : {}) });
    if (s.flowOut !== undefined)
      out.push({ name: 'request', ph: 's', ts: s.start, pid, tid, cat: 'flow', id: s.flowOut });
    if (s.flowIn !== undefined)
      out.push({ name: 'request', ph: 'f', bp: 'e', ts: s.start, pid, tid, cat: 'flow', id: s.flowIn });
    open.push(s);
  }
  close(Infinity);
}

const meta = (
  pid: number,
  tid: number,
  name: 'process_name' | 'thread_name' | 'thread_sort_index' | 'process_sort_index',
  value: string | number,
): TraceEvent => ({
  name,
  ph: 'M',
  ts: 0,
  pid,
  tid,
  args: name.endsWith('sort_index') ? { sort_index: value } : { name: value },
});

function requestArgs(e: Extract<ActorEvent, { type: 'arrive' | 'refuse' }>): Record<string, unknown> {
  const { cpu: _c, internal, ...req } = e.req;
  // pointers in hex, as every other report prints them
  const ptrs = 'ptr' in req ? { ptr: hexPtr(req.ptr) } : 'ptrs' in req ? { ptrs: req.ptrs.map(hexPtr) } : {};
  return { task: e.task, ...req, ...ptrs, ...(internal ? { at: 'machine shutdown' } : {}) };
}

/** A request's slice name: its kind, or "shutdown" for the machine's own clean-up. */
const requestName = (req: { kind: string; internal?: boolean }): string => (req.internal ? 'shutdown' : req.kind);

function replyArgs(e: Extract<ActorEvent, { type: 'done' }> | undefined): Record<string, unknown> {
  if (!e) return { reply: 'none: the run ended first' };
  const r = e.reply as Record<string, unknown>;
  if ('batch' in r) return { reply: `batch of ${(r.batch as unknown[]).length}` };
  if (r.ok && r.ptr !== undefined)
    return {
      result: 'ok',
      ptr: `0x${(r.ptr as number).toString(16)}`,
      chunk: r.chunk === -1 ? 'reserved' : r.chunk,
      offset: r.off,
    };
  return r.ok ? { result: 'ok' } : { result: 'failed', error: r.error };
}

/** The timeline as a Chrome trace. */
export function chromeTrace(t: Timeline, title: string): ChromeTrace {
  const ts = clock(t.events);
  const at = (e: ActorEvent): number => ts.get(e.seq)!;
  const endTs = (t.events.length ? at(t.events.at(-1)!) : 0) + TICK_US / 2;
  const index = new Map(t.events.map((e, i) => [e.seq, i]));
  const next = (e: ActorEvent): number => {
    const n = t.events[index.get(e.seq)! + 1];
    return n ? at(n) : endTs;
  };
  const out: TraceEvent[] = [];

  // kernel tasks: one span from arrival to reply, with sleeps, waits and preemptions inside
  const tasks = new Map<
    number,
    {
      arrive: ActorEvent;
      done?: Extract<ActorEvent, { type: 'done' }>;
      span: Span;
      open: { kind: string; since: number; name: string; args?: Record<string, unknown> } | null;
    }
  >();
  const requestSpans = new Map<number, Span[]>();
  const lockSpans: Record<string, Span[]> = { pcpu_alloc_mutex: [], pcpu_lock: [] };
  const held = new Map<string, { task: number; cpu: number; since: number }>();
  const owner = (h: { task: number; cpu: number }): string =>
    `task ${h.task} (${h.cpu < 0 ? 'kworker' : `cpu ${h.cpu}`})`;
  const lifecycle: TraceEvent[] = [];
  const endChild = (task: number, until: number): void => {
    const x = tasks.get(task);
    if (!x?.open) return;
    x.span.children!.push({
      name: x.open.name,
      start: x.open.since,
      end: until,
      cat: x.open.kind,
      ...(x.open.args ? { args: x.open.args } : {}),
    });
    x.open = null;
  };
  /** Starts a nested span on a task (a sleep, a wait, a preemption), ending the one before. */
  const beginChild = (task: number, now: number, kind: string, name: string, args: Record<string, unknown>): void => {
    endChild(task, now);
    const x = tasks.get(task);
    if (x) x.open = { kind, since: now, name, args };
  };
  const cpuSpan = (cpu: number, s: Span): void => {
    if (!requestSpans.has(cpu)) requestSpans.set(cpu, []);
    requestSpans.get(cpu)!.push(s);
  };
  for (const e of t.events) {
    const now = at(e);
    switch (e.type) {
      case 'arrive': {
        const span: Span = {
          name: `${e.req.kind} (task ${e.task}${e.cpu < 0 ? ', kworker' : `, cpu ${e.cpu}`})`,
          start: now,
          end: endTs,
          cat: 'task',
          args: requestArgs(e),
          children: [],
        };
        tasks.set(e.task, { arrive: e, span, open: null });
        if (e.cpu >= 0) {
          span.flowIn = e.task;
          cpuSpan(e.cpu, {
            name: requestName(e.req),
            start: now,
            end: endTs,
            cat: 'request',
            args: requestArgs(e),
            flowOut: e.task,
          });
        }
        break;
      }
      case 'refuse':
        if (e.cpu >= 0)
          cpuSpan(e.cpu, {
            name: `${requestName(e.req)} (refused)`,
            start: now,
            // until the next event: as long as the step lasted
            end: next(e),
            cat: 'request',
            args: { ...requestArgs(e), refused: e.error },
          });
        break;
      case 'sleep':
        beginChild(e.task, now, 'sleep', `sleep: ${e.at}`, { chunk: e.chunk, until_tick: e.until });
        break;
      case 'block':
        beginChild(e.task, now, 'wait', `wait: ${e.lock}`, { owner_task: e.owner });
        break;
      case 'preempt':
        beginChild(e.task, now, 'preempted', 'preempted', { at: e.at });
        break;
      case 'wake':
      case 'run':
        endChild(e.task, now);
        break;
      case 'lock':
        endChild(e.task, now);
        held.set(e.lock, { task: e.task, cpu: e.cpu, since: now });
        break;
      case 'unlock': {
        const h = held.get(e.lock);
        if (h)
          lockSpans[e.lock]!.push({
            name: e.lock,
            start: h.since,
            end: now,
            cat: 'lock',
            args: { owner: owner(h), task: h.task, cpu: h.cpu },
          });
        held.delete(e.lock);
        break;
      }
      case 'done': {
        const x = tasks.get(e.task);
        if (!x) break;
        endChild(e.task, now);
        x.done = e;
        x.span.end = now;
        x.span.args = { ...x.span.args, ...replyArgs(e) };
        const reqs = requestSpans.get(e.cpu);
        const r = reqs?.findLast((s) => s.flowOut === e.task);
        if (r) {
          r.end = now;
          r.args = { ...r.args, ...replyArgs(e) };
        }
        break;
      }
      case 'lifecycle':
        lifecycle.push({
          name: `lifecycle: ${e.state}`,
          ph: 'i',
          s: 'p',
          ts: now,
          pid: PID_ACTOR,
          tid: 0,
          cat: 'lifecycle',
        });
        break;
      case 'bug':
        lifecycle.push({
          name: `kernel BUG: ${e.bug.code}`,
          ph: 'i',
          s: 'p',
          ts: now,
          pid: PID_ACTOR,
          tid: 0,
          cat: 'bug',
          args: { cpu: e.cpu, task: e.task, message: e.bug.message },
        });
        break;
      default:
        break;
    }
  }
  for (const x of tasks.values()) {
    endChild(x.arrive.task, x.span.end);
    if (!x.done) x.span.args = { ...x.span.args, ...replyArgs(undefined) };
  }
  for (const [lock, h] of held)
    lockSpans[lock]!.push({
      name: lock,
      start: h.since,
      end: endTs,
      cat: 'lock',
      args: { owner: owner(h), task: h.task, cpu: h.cpu, note: 'still held when the run ended' },
    });

  // processes and tracks
  out.push(meta(PID_CPUS, 0, 'process_name', 'simulated CPUs'), meta(PID_CPUS, 0, 'process_sort_index', 1));
  out.push(
    meta(PID_ACTOR, 0, 'process_name', 'allocator actor'),
    meta(PID_ACTOR, 0, 'process_sort_index', 2),
    meta(PID_ACTOR, 0, 'thread_name', 'lifecycle and violations'),
  );
  out.push(meta(PID_LOCKS, 0, 'process_name', 'locks'), meta(PID_LOCKS, 0, 'process_sort_index', 3));

  // CPU tracks: phases (given, or the span of the CPU's requests in each lifecycle state)
  // a phase starts just after one event and ends just after another: events are at least 1 us apart
  const after = (seq: number, by: number): number => (ts.has(seq) ? ts.get(seq)! + by : 0);
  const phases = t.phases.length
    ? t.phases.map((p) => ({
        cpu: p.cpu,
        name: p.name,
        start: after(p.afterSeq, 0.6),
        end: Math.max(after(p.afterSeq, 0.6), after(p.untilSeq, 0.5)),
      }))
    : derivedPhases(t.events, at, requestSpans);
  const cpus = new Set<number>([...requestSpans.keys(), ...phases.map((p) => p.cpu)]);
  let tid = 1;
  for (const cpu of [...cpus].sort((a, b) => a - b)) {
    const spans: Span[] = [
      ...phases.filter((p) => p.cpu === cpu).map((p) => ({ name: p.name, start: p.start, end: p.end, cat: 'phase' })),
      ...(requestSpans.get(cpu) ?? []),
    ];
    laneOf(spans, (outer) => outer.cat === 'phase').forEach((lane, i) => {
      out.push(
        meta(PID_CPUS, tid, 'thread_name', i ? `CPU ${cpu} (overlapping requests ${i})` : `CPU ${cpu}`),
        meta(PID_CPUS, tid, 'thread_sort_index', tid),
      );
      emitLane(out, lane, PID_CPUS, tid++);
    });
  }

  // the actor: task lanes
  const taskLanes = laneOf([...tasks.values()].map((x) => x.span));
  taskLanes.forEach((lane, i) => {
    out.push(
      meta(PID_ACTOR, i + 1, 'thread_name', `kernel task lane ${i}`),
      meta(PID_ACTOR, i + 1, 'thread_sort_index', i + 1),
    );
    emitLane(out, lane, PID_ACTOR, i + 1);
  });
  out.push(...lifecycle);

  // locks
  (['pcpu_alloc_mutex', 'pcpu_lock'] as const).forEach((lock, i) => {
    out.push(meta(PID_LOCKS, i + 1, 'thread_name', lock), meta(PID_LOCKS, i + 1, 'thread_sort_index', i + 1));
    // a lock held twice at once is a scheduler fault; show it on lanes of its own rather than break nesting
    laneOf(lockSpans[lock]!).forEach((lane, j) => {
      if (j) out.push(meta(PID_LOCKS, 10 * (i + 1) + j, 'thread_name', `${lock} (held twice at once!)`));
      emitLane(out, lane, PID_LOCKS, j ? 10 * (i + 1) + j : i + 1);
    });
  });

  // counters
  const seqTs = (seq: number, tick: number): number => ts.get(seq) ?? tick * TICK_US;
  for (const c of t.counters) {
    const when = seqTs(c.seq, c.tick);
    for (const [k, name, unit] of COUNTERS)
      out.push({ name, ph: 'C', ts: when, pid: PID_ACTOR, tid: 0, args: { [unit]: c[k] } });
  }

  // violations, at the last event of the tick they were found at
  for (const v of t.violations) {
    const e = t.events.findLast((x) => x.tick <= v.tick);
    out.push({
      name: `violation: ${v.text.slice(0, 80)}`,
      ph: 'i',
      s: 'g',
      ts: e ? at(e) : v.tick * TICK_US,
      pid: PID_ACTOR,
      tid: 0,
      cat: 'violation',
      args: { text: v.text, tick: v.tick },
    });
  }

  // metadata first, then by time; a stable sort keeps each track's own order
  const traceEvents = out
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.ph === 'M' ? -1 : 0) - (b.e.ph === 'M' ? -1 : 0) || a.e.ts - b.e.ts || a.i - b.i)
    .map((x) => x.e);
  return {
    traceEvents,
    displayTimeUnit: 'ms',
    otherData: { title, generator: 'percpu-sim', clock: `1 scheduler tick = ${TICK_US} us` },
  };
}

/** Without explicit phases: each CPU's requests grouped by the lifecycle state they fell in. */
function derivedPhases(
  events: readonly ActorEvent[],
  at: (e: ActorEvent) => number,
  requests: Map<number, Span[]>,
): { cpu: number; name: string; start: number; end: number }[] {
  const states: { name: string; from: number }[] = [];
  for (const e of events) if (e.type === 'lifecycle') states.push({ name: e.state, from: at(e) });
  const out: { cpu: number; name: string; start: number; end: number }[] = [];
  for (const [cpu, spans] of requests) {
    const by = new Map<string, { start: number; end: number }>();
    for (const s of spans) {
      const state = states.findLast((x) => x.from <= s.start)?.name ?? 'boot';
      const p = by.get(state);
      if (!p) by.set(state, { start: s.start, end: s.end });
      else p.end = Math.max(p.end, s.end);
    }
    for (const [name, p] of by) out.push({ cpu, name: `phase: ${name}`, start: p.start - 0.25, end: p.end + 0.25 });
  }
  return out;
}
