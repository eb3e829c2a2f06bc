/**
 * A run as a timeline: the actor's event log, each CPU's workload phases, samples of the
 * allocator's counters, snapshots of every chunk's map, and the violations with the tick they
 * were found at. The Chrome trace writer and the HTML report both draw from it.
 *
 * The recorder only reads the allocator (between the actor's events, as a percpu_stats read
 * would); it never changes it. Snapshots are thinned as a run grows, so that a long run keeps
 * a bounded number of frames spread evenly over it.
 */
import type { PhaseSpan, RunObserver } from '../harness/observer.ts';
import type { ActorEvent } from '../sim/events.ts';
import type { Violation } from '../check/violation.ts';
import type { PcpuChunk } from '../kernel/chunk.ts';
import { type Percpu, chunkName } from '../kernel/percpu.ts';
import { formatPercpuStats, percpuStats } from '../kernel/stats.ts';

export interface CounterSample {
  seq: number;
  tick: number;
  chunks: number;
  populated_pages: number;
  free_bytes: number;
  live_areas: number;
}

export interface ChunkFrame {
  id: number;
  name: string;
  /** the area map: positive entries free, negative in use */
  map: number[];
  /** whether the first entry is the static (and reserved) head rather than an allocation */
  head: boolean;
  /** one character per page of a unit: 1 populated, 0 not */
  populated: string;
  free: number;
  contig: number;
}

export interface Frame {
  /** the event (or replay line) after which the snapshot was taken */
  seq: number;
  tick: number;
  label: string;
  chunks: ChunkFrame[];
}

export interface TimelineViolation {
  tick: number;
  text: string;
  /** "checker/kind", when the finding is known */
  kind?: string;
  cpu?: number;
  task?: number;
  /** what the checker added: the allocation hit, whose bytes they were before */
  data?: Readonly<Record<string, unknown>>;
}

/** The first chunk's shape: groups of units, and which CPU (on which node) owns each unit. */
export interface BootLayout {
  unitSize: number;
  staticSize: number;
  reservedSize: number;
  dynSize: number;
  atomSize: number;
  groups: {
    index: number;
    offset: number;
    size: number;
    units: { unit: number; offset: number; cpu: number | null; node: number | null }[];
  }[];
}

export interface Timeline {
  cpus: number;
  events: ActorEvent[];
  phases: PhaseSpan[];
  counters: CounterSample[];
  frames: Frame[];
  violations: TimelineViolation[];
  layout: BootLayout | null;
  /** the percpu_stats dump at the end */
  stats: string;
  bootLines: string[];
}

/** At most this many snapshots; past it every other one is dropped and sampling slows down. */
const MAX_FRAMES = 256;
/** At most this many map entries over all snapshots. */
const MAX_FRAME_ENTRIES = 2_000_000;

/** Every chunk, reserved first, then by id. */
function chunksOf(pc: Percpu): PcpuChunk[] {
  const list = [...pc.chunks.values()];
  if (pc.pcpu_reserved_chunk && !list.includes(pc.pcpu_reserved_chunk)) list.push(pc.pcpu_reserved_chunk);
  return list.sort((a, b) => a.id - b.id);
}

/** Reads the first chunk's layout off the allocator. */
export function bootLayout(pc: Percpu): BootLayout {
  const unitSize = pc.pcpu_unit_size;
  const groups: BootLayout['groups'] = [];
  for (let g = 0; g < pc.pcpu_nr_groups; g++) {
    const offset = pc.pcpu_group_offsets[g]!;
    const size = pc.pcpu_group_sizes[g]!;
    const units: BootLayout['groups'][number]['units'] = [];
    for (let i = 0; i * unitSize < size; i++)
      units.push({ unit: -1, offset: offset + i * unitSize, cpu: null, node: null });
    groups.push({ index: g, offset, size, units });
  }
  for (let cpu = 0; cpu < pc.nr_cpu_ids; cpu++) {
    const off = pc.pcpu_unit_offsets[cpu]!;
    const g = groups.find((x) => off >= x.offset && off < x.offset + x.size);
    const u = g?.units[(off - g.offset) / unitSize];
    if (u) Object.assign(u, { unit: pc.pcpu_unit_map[cpu]!, cpu, node: pc.machine.cpuToNode(cpu) });
  }
  return {
    unitSize,
    staticSize: pc.pcpu_static_size,
    reservedSize: pc.pcpu_reserved_size,
    dynSize: pc.pcpu_dyn_size,
    atomSize: pc.pcpu_atom_size,
    groups,
  };
}

export interface RecorderOptions {
  /** keep snapshots of the chunk maps (for the HTML report) */
  frames?: boolean;
}

export class TimelineRecorder implements RunObserver {
  private pc: Percpu | null = null;
  private layout: BootLayout | null = null;
  private bootLines: string[] = [];
  private readonly events: ActorEvent[] = [];
  private readonly phases: PhaseSpan[] = [];
  private readonly counters: CounterSample[] = [];
  private frames: Frame[] = [];
  private readonly violations: TimelineViolation[] = [];
  private frameEntries = 0;
  private stride = 1;
  private sampled = 0;
  private lastCounters = '';
  private readonly wantFrames: boolean;
  private cpus = 0;

  constructor(opts: RecorderOptions = {}) {
    this.wantFrames = opts.frames ?? true;
  }

  /** The allocator to read counters and maps from, once it has booted. */
  attach(pc: Percpu): void {
    this.pc = pc;
    this.cpus = pc.nr_cpu_ids;
    this.layout = bootLayout(pc);
    this.bootLines = [...pc.dmesg];
    this.counter({ seq: 0, tick: 0 });
    this.frame(0, 0, () => 'after boot');
  }

  /** One actor event, as it happens. */
  observe(e: ActorEvent): void {
    this.events.push(e);
    if (e.type === 'done' || e.type === 'sleep' || e.type === 'wake' || e.type === 'lifecycle' || e.type === 'bug')
      this.counter(e);
    if (e.type === 'done' || e.type === 'lifecycle') this.frame(e.seq, e.tick, () => eventLabel(e));
  }

  /** A step that is not an actor event (a line of a replayed trace). */
  step(seq: number, label: string): void {
    // a long trace is sampled, counters and maps alike: reading every chunk per line would
    // cost more than the replay itself
    if (this.frame(seq, seq, () => label)) this.counter({ seq, tick: seq });
  }

  /** The sequence number of the last event seen: where a phase starts or ends. */
  mark(): number {
    return this.events.at(-1)?.seq ?? 0;
  }

  phase(p: PhaseSpan): void {
    this.phases.push(p);
  }

  /** A finding, at the tick it was found at (null: at the end of the run). */
  violation(tick: number | null, text: string, v?: Violation): void {
    this.violations.push({
      tick: tick ?? -1,
      text,
      ...(v
        ? {
            kind: `${v.checker}/${v.kind}`,
            cpu: v.cpu,
            ...(v.task !== undefined ? { task: v.task } : {}),
            ...(v.data ? { data: v.data } : {}),
          }
        : {}),
    });
  }

  private counter(at: { seq: number; tick: number }): void {
    const pc = this.pc;
    if (!pc) return;
    let populated = 0;
    let free = 0;
    let live = 0;
    const chunks = chunksOf(pc);
    for (const c of chunks) {
      free += c.free_size;
      if (!c.immutable) for (let p = 0; p < pc.pcpu_unit_pages; p++) populated += c.populated[p]!;
      const head = c === pc.pcpu_first_chunk || c === pc.pcpu_reserved_chunk ? 1 : 0;
      for (let i = head; i < c.map_used; i++) if (c.map[i]! < 0) live++;
    }
    const s = { chunks: chunks.length, populated_pages: populated * pc.nr_cpu_ids, free_bytes: free, live_areas: live };
    const key = `${s.chunks},${s.populated_pages},${s.free_bytes},${s.live_areas}`;
    if (key === this.lastCounters) return;
    this.lastCounters = key;
    this.counters.push({ seq: at.seq, tick: at.tick, ...s });
  }

  /** Takes a snapshot if this is a sampled point; says whether it did. */
  private frame(seq: number, tick: number, label: () => string): boolean {
    if (!this.wantFrames || !this.pc) return false;
    if (this.sampled++ % this.stride !== 0) return false;
    this.takeFrame(seq, tick, label());
    while (this.frames.length > MAX_FRAMES || (this.frameEntries > MAX_FRAME_ENTRIES && this.frames.length > 2)) {
      // keep the first, drop every other one after it, and sample half as often from now on
      this.frames = this.frames.filter((_, i) => i % 2 === 0);
      this.frameEntries = this.frames.reduce((a, f) => a + f.chunks.reduce((b, c) => b + c.map.length, 0), 0);
      this.stride *= 2;
    }
    return true;
  }

  private takeFrame(seq: number, tick: number, label: string): void {
    const pc = this.pc!;
    const chunks = chunksOf(pc).map((c) => {
      const map = c.mapEntries();
      this.frameEntries += map.length;
      return {
        id: c.id,
        name: chunkName(c),
        map,
        head: c === pc.pcpu_first_chunk || c === pc.pcpu_reserved_chunk,
        populated: Array.from(c.populated.subarray(0, pc.pcpu_unit_pages), (b) => (b ? '1' : '0')).join(''),
        free: c.free_size,
        contig: c.contig_hint,
      };
    });
    this.frames.push({ seq, tick, label, chunks });
  }

  /** The timeline; the last state is always the last frame. */
  finish(): Timeline {
    const last = this.events.at(-1);
    const end = Math.max(last?.seq ?? 0, this.frames.at(-1)?.seq ?? 0);
    if (this.pc && this.wantFrames && this.frames.at(-1)?.seq !== end)
      this.takeFrame(end, last?.tick ?? end, last ? `end of run (after ${eventLabel(last)})` : 'end');
    let stats = '';
    if (this.pc)
      try {
        stats = formatPercpuStats(percpuStats(this.pc));
      } catch (e) {
        stats = `percpu_stats unavailable: ${(e as Error).message}`;
      }
    for (const v of this.violations) if (v.tick < 0) v.tick = last?.tick ?? 0;
    return {
      cpus: this.cpus,
      events: this.events,
      phases: this.phases,
      counters: this.counters,
      frames: this.frames,
      violations: this.violations,
      layout: this.layout,
      stats,
      bootLines: this.bootLines,
    };
  }
}

function eventLabel(e: ActorEvent): string {
  const who = e.cpu === -1 ? 'kworker' : `cpu ${e.cpu}`;
  if (e.type === 'lifecycle') return `#${e.seq} t${e.tick}: lifecycle ${e.state}`;
  if (e.type !== 'done') return `#${e.seq} t${e.tick}: ${who} ${e.type}`;
  const r = e.reply as { ok: boolean; ptr?: number; chunk?: number; off?: number; size?: number; error?: string };
  const what = !r.ok
    ? `failed: ${r.error}`
    : r.ptr !== undefined
      ? `chunk ${r.chunk === -1 ? 'reserved' : r.chunk} off ${r.off} size ${r.size}`
      : 'ok';
  return `#${e.seq} t${e.tick}: ${who} ${e.kind} (task ${e.task}) ${what}`;
}
