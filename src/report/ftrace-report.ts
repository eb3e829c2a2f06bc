/**
 * What a traced kernel did with its percpu allocations, beside what 2.6.36 does with the same
 * requests: chunks, allocations per chunk, the most live bytes, failures and fragmentation.
 * The traced side comes from the tracepoints alone (what they do not show is printed as "-");
 * the 2.6.36 side from replaying the requests through the allocator.
 */
import type { FtraceEvent, FtraceOps, FtraceParse } from '../trace/ftrace.ts';
import { percpuStats } from '../kernel/stats.ts';
import { Replayer } from '../trace/replay.ts';
import { STEP, finish } from '../util/steps.ts';

export interface Side {
  chunks_created: number | null;
  chunks_destroyed: number | null;
  allocations: number;
  failed: number;
  /** the largest sum of live allocation sizes at any moment */
  max_live_bytes: number;
  live_at_end: number;
  populated_pages_at_end: number | null;
  /** free bytes between live areas, below each chunk's last live area, summed over chunks */
  fragmentation_bytes: number;
  /** allocations served, by chunk */
  per_chunk: Record<string, number>;
  /** 2.6.36 only: the kernel's reasons for failures, with counts */
  reasons?: Record<string, number>;
}

export interface FtraceComparison {
  events: Record<FtraceEvent['kind'], number>;
  cpus: number;
  skipped: {
    other_events: number;
    comments: number;
    unreadable: number;
    malformed: number;
    unmatched_frees: number;
  };
  traced: Side;
  kernel_2_6_36: Side;
}

/** Sum of the gaps between live areas, per chunk, up to its last live area. */
function fragmentation(
  live: Iterable<{ chunk: string; off: number; size: number }>,
  starts: Map<string, number>,
): number {
  const by = new Map<string, { off: number; size: number }[]>();
  for (const a of live) {
    let l = by.get(a.chunk);
    if (!l) by.set(a.chunk, (l = []));
    l.push(a);
  }
  let sum = 0;
  for (const [chunk, areas] of by) {
    areas.sort((x, y) => x.off - y.off);
    let end = starts.get(chunk) ?? areas[0]!.off;
    for (const a of areas) {
      if (a.off > end) sum += a.off - end;
      end = Math.max(end, a.off + a.size);
    }
  }
  return sum;
}

function tracedSide(events: readonly FtraceEvent[]): Side {
  const names = new Map<string, string>();
  const nameOf = (base: string, reserved: boolean): string => {
    const key = `${reserved ? 'r' : ''}${base}`;
    let n = names.get(key);
    if (!n) names.set(key, (n = `${reserved ? 'reserved' : 'chunk'} @${base}`));
    return n;
  };
  const live = new Map<string, { chunk: string; off: number; size: number }>();
  const starts = new Map<string, number>();
  const side: Side = {
    chunks_created: 0,
    chunks_destroyed: 0,
    allocations: 0,
    failed: 0,
    max_live_bytes: 0,
    live_at_end: 0,
    populated_pages_at_end: null,
    fragmentation_bytes: 0,
    per_chunk: {},
  };
  let bytes = 0;
  for (const e of events) {
    if (e.kind === 'create_chunk') side.chunks_created!++;
    else if (e.kind === 'destroy_chunk') side.chunks_destroyed!++;
    else if (e.kind === 'fail') side.failed++;
    else if (e.kind === 'alloc') {
      const chunk = nameOf(e.base, e.reserved);
      side.allocations++;
      side.per_chunk[chunk] = (side.per_chunk[chunk] ?? 0) + 1;
      starts.set(chunk, Math.min(starts.get(chunk) ?? e.off, e.off));
      live.set(e.ptr, { chunk, off: e.off, size: e.size });
      bytes += e.size;
      side.max_live_bytes = Math.max(side.max_live_bytes, bytes);
    } else if (e.kind === 'free') {
      const a = live.get(e.ptr);
      if (!a) continue;
      live.delete(e.ptr);
      bytes -= a.size;
    }
  }
  side.live_at_end = live.size;
  side.fragmentation_bytes = fragmentation(live.values(), starts);
  return side;
}

/** Replays the operations through 2.6.36 and measures the same things. Throws BadInput as replay does. */
function* replaySide(ops: FtraceOps, memoryBytes?: number): Generator<number, Side> {
  const r = new Replayer(memoryBytes ? { memoryBytes } : {});
  const side: Side = {
    chunks_created: 0,
    chunks_destroyed: 0,
    allocations: 0,
    failed: 0,
    max_live_bytes: 0,
    live_at_end: 0,
    populated_pages_at_end: 0,
    fragmentation_bytes: 0,
    per_chunk: {},
    reasons: {},
  };
  const sizes = new Map<string, { size: number; chunk: string; off: number }>();
  const chunks = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < ops.lines.length; i++) {
    if (i % STEP === 0 && i) yield i;
    const out = r.step(ops.lines[i]!, i + 1);
    if (out === null) continue;
    const res = JSON.parse(out) as {
      op: string;
      id?: string;
      chunk?: number | string | null;
      offset?: number;
      error?: string;
    };
    const req = JSON.parse(ops.lines[i]!) as { op: string; id?: string; size?: number };
    if (res.op === 'alloc') {
      if (res.chunk === null || res.chunk === undefined) {
        side.failed++;
        side.reasons![res.error ?? '?'] = (side.reasons![res.error ?? '?'] ?? 0) + 1;
        continue;
      }
      const chunk = res.chunk === 'reserved' ? 'reserved' : `chunk ${res.chunk}`;
      if (typeof res.chunk === 'number' && res.chunk > 0) chunks.add(chunk);
      side.allocations++;
      side.per_chunk[chunk] = (side.per_chunk[chunk] ?? 0) + 1;
      sizes.set(res.id!, { size: req.size!, chunk, off: res.offset! });
      bytes += req.size!;
      side.max_live_bytes = Math.max(side.max_live_bytes, bytes);
    } else if (res.op === 'free') {
      const a = sizes.get(res.id!);
      if (!a) continue;
      sizes.delete(res.id!);
      bytes -= a.size;
    }
  }
  const pc = r.summary.pc!;
  side.chunks_created = chunks.size;
  side.chunks_destroyed = pc.stats.nr_reclaimed;
  side.live_at_end = sizes.size;
  const stats = percpuStats(pc);
  side.populated_pages_at_end = 0;
  for (const c of [...pc.chunks.values()])
    for (let p = 0; p < pc.pcpu_unit_pages; p++) if (c.populated[p]) side.populated_pages_at_end += pc.nr_cpu_ids;
  side.fragmentation_bytes = stats.chunks.reduce((s, c) => s + c.sum_frag, 0);
  return side;
}

export function compareFtrace(parsed: FtraceParse, ops: FtraceOps, memoryBytes?: number): FtraceComparison {
  return finish(compareFtraceSteps(parsed, ops, memoryBytes));
}

/** compareFtrace, yielding the operations replayed so far every STEP operations. */
export function* compareFtraceSteps(
  parsed: FtraceParse,
  ops: FtraceOps,
  memoryBytes?: number,
): Generator<number, FtraceComparison> {
  const events = { alloc: 0, free: 0, fail: 0, create_chunk: 0, destroy_chunk: 0 };
  for (const e of parsed.events) events[e.kind]++;
  return {
    events,
    cpus: parsed.cpus,
    skipped: {
      other_events: parsed.otherEvents,
      comments: parsed.comments,
      unreadable: parsed.unreadable,
      malformed: parsed.malformed.length,
      unmatched_frees: ops.unmatchedFrees,
    },
    traced: tracedSide(parsed.events),
    kernel_2_6_36: yield* replaySide(ops, memoryBytes),
  };
}

/** The comparison as a table a person reads. */
const n = (k: number, what: string): string => `${k} ${what}${k === 1 ? '' : 's'}`;

export function formatFtraceComparison(c: FtraceComparison, file: string): string {
  const e = c.events;
  const out = [
    `percpu-sim ftrace ${file}: ${n(e.alloc, 'allocation')}, ${n(e.free, 'free')}, ${n(e.fail, 'failure')}, ${n(e.create_chunk, 'chunk')} created and ${e.destroy_chunk} destroyed, on ${n(c.cpus, 'CPU')}`,
    `skipped: ${c.skipped.other_events} lines of other events, ${c.skipped.comments} comment or header lines${c.skipped.unreadable ? `, ${c.skipped.unreadable} unreadable or binary lines` : ''}${c.skipped.malformed ? `, ${c.skipped.malformed} malformed percpu lines (--lenient)` : ''}; ${c.skipped.unmatched_frees} frees of pointers allocated before the trace began`,
    '',
  ];
  const t = c.traced;
  const k = c.kernel_2_6_36;
  const v = (x: number | null): string => (x === null ? '-' : String(x));
  const row = (name: string, a: string, b: string): string => `${name.padEnd(48)}${a.padStart(14)}${b.padStart(12)}`;
  out.push(row('', 'traced kernel', '2.6.36'));
  out.push(row('chunks created', v(t.chunks_created), v(k.chunks_created)));
  out.push(row('chunks destroyed', v(t.chunks_destroyed), v(k.chunks_destroyed)));
  out.push(row('allocations served', v(t.allocations), v(k.allocations)));
  out.push(row('allocations failed', v(t.failed), v(k.failed)));
  out.push(row('most live bytes', v(t.max_live_bytes), v(k.max_live_bytes)));
  out.push(row('live areas at the end', v(t.live_at_end), v(k.live_at_end)));
  out.push(row('populated pages at the end', v(t.populated_pages_at_end), v(k.populated_pages_at_end)));
  out.push(row('free bytes below the last area (fragmentation)', v(t.fragmentation_bytes), v(k.fragmentation_bytes)));
  out.push('', 'allocations served per chunk (traced chunks by base address, 2.6.36 chunks by number):');
  const tl = Object.entries(t.per_chunk);
  const kl = Object.entries(k.per_chunk).sort(([a], [b]) =>
    a === 'reserved' ? -1 : b === 'reserved' ? 1 : Number(a.slice(6)) - Number(b.slice(6)),
  );
  for (let i = 0; i < Math.max(tl.length, kl.length); i++) {
    const a = tl[i] ? `${tl[i]![0]}: ${tl[i]![1]}` : '';
    const b = kl[i] ? `${kl[i]![0]}: ${kl[i]![1]}` : '';
    out.push(`  ${a.padEnd(40)}${b}`);
  }
  if (k.reasons && Object.keys(k.reasons).length) {
    out.push('', '2.6.36 failures by reason:');
    for (const [r, n] of Object.entries(k.reasons)) out.push(`  ${n} x ${r}`);
  }
  return out.join('\n');
}
