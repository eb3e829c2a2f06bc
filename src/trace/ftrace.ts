/**
 * The kernel's percpu tracepoints (include/trace/events/percpu.h, 4.14 on) as text, the way
 * tracefs (`trace`, `trace_pipe`) and `trace-cmd report` print them, turned into events and
 * then into replay operations (docs/replay-format.md).
 *
 * A line is a prefix (task-pid, an optional tgid, [cpu], an optional flags column of any
 * width, a timestamp in seconds), the event name, and its fields. Every field generation is
 * accepted: 4.14's, 5.19's with call_site, bytes_alloc and gfp_flags, hashed or raw pointers,
 * and the fail event with or without do_warn and warn_limit. Other events, comments and
 * headers are skipped and counted; a malformed percpu line is an error naming its line and
 * field, unless the caller is lenient.
 */

import { STEP, finish } from '../util/steps.ts';

export type FtraceEvent =
  | {
      kind: 'alloc';
      line: number;
      cpu: number;
      ts: number;
      comm: string;
      reserved: boolean;
      atomic: boolean;
      size: number;
      align: number;
      base: string;
      off: number;
      ptr: string;
      /** 5.19 on */
      callSite: string | null;
      bytesAlloc: number | null;
      gfp: string | null;
    }
  | { kind: 'free'; line: number; cpu: number; ts: number; comm: string; base: string; off: number; ptr: string }
  | {
      kind: 'fail';
      line: number;
      cpu: number;
      ts: number;
      comm: string;
      reserved: boolean;
      atomic: boolean;
      size: number;
      align: number;
      doWarn: boolean | null;
    }
  | { kind: 'create_chunk' | 'destroy_chunk'; line: number; cpu: number; ts: number; comm: string; base: string };

export interface FtraceParse {
  events: FtraceEvent[];
  /** lines of other events */
  otherEvents: number;
  /** comments, headers and blank lines */
  comments: number;
  /** lines that are not text: bytes that are not UTF-8, or control characters other than tab */
  unreadable: number;
  /** malformed percpu lines skipped (only when lenient) */
  malformed: { line: number; message: string }[];
  /** the highest CPU number seen, plus one; or a `cpus=N` header's N, whichever is larger */
  cpus: number;
}

/** A malformed percpu line: which line, which field, what was wrong. */
export class FtraceError extends Error {
  override readonly name = 'FtraceError';
  constructor(
    readonly line: number,
    readonly field: string,
    detail: string,
  ) {
    super(`line ${line}: ${field}: ${detail}`);
  }
}

const EVENTS = {
  percpu_alloc_percpu: 'alloc',
  percpu_free_percpu: 'free',
  percpu_alloc_percpu_fail: 'fail',
  percpu_create_chunk: 'create_chunk',
  percpu_destroy_chunk: 'destroy_chunk',
} as const;
type EventName = keyof typeof EVENTS;

/**
 * task-pid, then an optional "(tgid)", [cpu], an optional flags column (any width, no colon),
 * the timestamp and the event name. The task name may hold spaces and dashes: the pid is the
 * last "-digits" before the CPU column.
 */
const PREFIX =
  /^\s*(?<comm>.*?)-(?<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?<cpu>\d{1,4})\]\s+(?:(?<flags>[^\s:]{1,8})\s+)?(?<ts>\d+\.\d+):\s+(?<event>\w+):\s?(?<fields>.*)$/;
const FIELD = /([a-z_]+)=(\S*)/g;
/** A line that names a percpu event, with or without its prefix. */
const NAMED = /\b(percpu_(?:alloc_percpu_fail|alloc_percpu|free_percpu|create_chunk|destroy_chunk)):/;
/** What a text trace never holds: a byte that did not decode as UTF-8, or a control character other than tab. */
// eslint-disable-next-line no-control-regex
const BINARY = /[\ufffd\x00-\x08\x0b-\x1f\x7f]/;

/** Control characters shown as escapes, so that a crafted line cannot drive a terminal. */
export function printable(s: string, max = 120): string {
  const t = s.length > max ? `${s.slice(0, max)}...` : s;
  // eslint-disable-next-line no-control-regex
  return t.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function fieldsOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(FIELD)) out.set(m[1]!, m[2]!.replace(/,$/, ''));
  return out;
}

export function parseFtrace(text: string, opts: { lenient?: boolean } = {}): FtraceParse {
  return finish(parseFtraceSteps(text, opts));
}

/** parseFtrace, yielding the number of lines read so far every STEP lines. */
export function* parseFtraceSteps(text: string, opts: { lenient?: boolean } = {}): Generator<number, FtraceParse> {
  const res: FtraceParse = { events: [], otherEvents: 0, comments: 0, unreadable: 0, malformed: [], cpus: 0 };
  const lines = text.split('\n');
  // a file's last line ends in a newline: what follows it is no line
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    if (i % STEP === 0 && i) yield i;
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/\r$/, '');
    // a line that names a percpu event is read as one, and reported if malformed
    if (BINARY.test(raw) && !NAMED.test(raw)) {
      res.unreadable++;
      continue;
    }
    const trimmed = raw.trim();
    if (!trimmed || trimmed.startsWith('#')) {
      res.comments++;
      continue;
    }
    const header = /^cpus=(\d+)$/.exec(trimmed);
    if (header) {
      res.cpus = Math.max(res.cpus, Number(header[1]));
      res.comments++;
      continue;
    }
    try {
      const ev = parseLine(raw, lineNo);
      if (ev === null) {
        // trace-cmd's own headers ("version = 6", "CPU 3 is empty") and other events
        if (/^(version = |CPU \d+ is empty|trace-cmd:)/.test(trimmed) || !PREFIX.test(raw)) res.comments++;
        else res.otherEvents++;
        continue;
      }
      res.cpus = Math.max(res.cpus, ev.cpu + 1);
      res.events.push(ev);
    } catch (e) {
      if (!(e instanceof FtraceError) || !opts.lenient) throw e;
      res.malformed.push({ line: lineNo, message: e.message });
    }
  }
  return res;
}

/** One line: a percpu event, or null for anything else. Throws FtraceError for a malformed percpu line. */
function parseLine(raw: string, line: number): FtraceEvent | null {
  const m = PREFIX.exec(raw);
  if (!m) {
    const named = NAMED.exec(raw);
    if (named)
      throw new FtraceError(
        line,
        'prefix',
        `a ${named[1]} line without the task-pid [cpu] timestamp prefix: "${printable(raw)}"`,
      );
    return null;
  }
  const g = m.groups!;
  const event = g.event! as EventName;
  if (!Object.hasOwn(EVENTS, event)) return null;
  const f = fieldsOf(g.fields!);
  const base = { line, cpu: Number(g.cpu), ts: Number(g.ts), comm: g.comm!.trim() };

  const need = (name: string): string => {
    const v = f.get(name);
    if (v === undefined || v === '') throw new FtraceError(line, name, `${event} has no ${name}= field`);
    return v;
  };
  const int = (name: string, min: number): number => {
    const v = need(name);
    if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min)
      throw new FtraceError(
        line,
        name,
        `expected a whole number${min >= 0 ? ` >= ${min}` : ''}, got "${printable(v, 40)}"`,
      );
    return Number(v);
  };
  const bool = (name: string): boolean => {
    const v = need(name);
    if (v !== '0' && v !== '1') throw new FtraceError(line, name, `expected 0 or 1, got "${printable(v, 40)}"`);
    return v === '1';
  };
  const pointer = (name: string): string => {
    const v = need(name);
    if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(v) && v !== '(null)')
      throw new FtraceError(line, name, `expected a pointer in hex, got "${printable(v, 40)}"`);
    return v.toLowerCase().replace(/^0x/, '');
  };

  switch (EVENTS[event]) {
    case 'alloc': {
      const modern = f.has('call_site') || f.has('bytes_alloc') || f.has('gfp_flags');
      return {
        kind: 'alloc',
        ...base,
        reserved: bool('reserved'),
        atomic: bool('is_atomic'),
        size: int('size', 0),
        align: int('align', 0),
        base: pointer('base_addr'),
        off: int('off', -(2 ** 31)),
        ptr: pointer('ptr'),
        callSite: modern ? need('call_site') : null,
        bytesAlloc: modern ? int('bytes_alloc', 0) : null,
        gfp: modern ? need('gfp_flags') : null,
      };
    }
    case 'free':
      return { kind: 'free', ...base, base: pointer('base_addr'), off: int('off', -(2 ** 31)), ptr: pointer('ptr') };
    case 'fail':
      return {
        kind: 'fail',
        ...base,
        reserved: bool('reserved'),
        atomic: bool('is_atomic'),
        size: int('size', 0),
        align: int('align', 0),
        doWarn: f.has('do_warn') ? bool('do_warn') : null,
      };
    case 'create_chunk':
    case 'destroy_chunk':
      return { kind: EVENTS[event], ...base, base: pointer('base_addr') };
  }
}

/** The trace as replay operations, with what could not be matched. */
export interface FtraceOps {
  /** JSON Lines in the replay format, boot first */
  lines: string[];
  allocs: number;
  frees: number;
  /** failed allocations of the traced kernel, replayed as allocations too */
  failedAllocs: number;
  /** frees of pointers allocated before the trace began */
  unmatchedFrees: number;
  /** per operation after the boot lines: the trace event it came from */
  sources: FtraceEvent[];
}

export interface FirstChunkShape {
  static_size: number;
  reserved_size: number;
  dyn_size: number;
  cpus: number;
}

/**
 * Replay operations for the trace: boot (with the given first-chunk shape), slab online and
 * late init (the tracepoints come up after both), then every allocation, failed allocation
 * and matched free in trace order. Frees match allocations by pointer, which is stable within
 * one boot even when hashed.
 */
export function toReplayOps(events: readonly FtraceEvent[], shape: FirstChunkShape): FtraceOps {
  const out: FtraceOps = { lines: [], allocs: 0, frees: 0, failedAllocs: 0, unmatchedFrees: 0, sources: [] };
  out.lines.push(
    JSON.stringify({
      op: 'boot',
      static_size: shape.static_size,
      reserved_size: shape.reserved_size,
      dyn_size: shape.dyn_size,
      cpus: shape.cpus,
    }),
  );
  out.lines.push(JSON.stringify({ op: 'slab_online' }), JSON.stringify({ op: 'init_late' }));
  const live = new Map<string, string>();
  for (const e of events) {
    if (e.kind === 'alloc' || e.kind === 'fail') {
      const id = `${e.kind === 'alloc' ? 'a' : 'f'}${e.line}`;
      out.lines.push(
        JSON.stringify({ op: 'alloc', id, size: e.size, align: e.align, ...(e.reserved ? { reserved: true } : {}) }),
      );
      out.sources.push(e);
      if (e.kind === 'alloc') {
        out.allocs++;
        live.set(e.ptr, id);
      } else out.failedAllocs++;
    } else if (e.kind === 'free') {
      const id = live.get(e.ptr);
      if (id === undefined) {
        out.unmatchedFrees++;
        continue;
      }
      live.delete(e.ptr);
      out.lines.push(JSON.stringify({ op: 'free', id }));
      out.sources.push(e);
      out.frees++;
    }
  }
  return out;
}
