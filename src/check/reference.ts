/**
 * The run held against 2.6.36, operation by operation. The allocator's map operations are
 * serialized by pcpu_lock, so the order of its tracepoints in the event log is a sequential
 * history; the reference model (src/model, which shares no code with src/kernel) is stepped
 * in that order, and at each operation it says what 2.6.36 does from the state it has:
 * which chunk and offset a walk takes, when a map grows or a chunk is created, which pages
 * are populated and from which node, what a free and a reclaim pass do, and when the
 * lifecycle allows late init. What only the machine decides (when the reclaim work ran, an
 * allocation the page allocator refused) is taken from the history as input.
 *
 * Besides the model, two rules of 2.6.36's locks: pcpu_lock is a ticket spinlock, so it is
 * handed over strictly in arrival order; and the node each populated page really came from
 * is read through the checker's own page-table walk.
 *
 * The first divergence is the report; after it the model no longer describes the run, so
 * the checker stops.
 */
import type { PcpuTrace } from '../kernel/percpu-internal.ts';
import { readHeader } from '../mem/layout.ts';
import { bootFirstChunk, type BootSpec, nodeDistance } from '../model/first-chunk.ts';
import { type AllocDecision, Divergence, type PercpuModel, RESERVED } from '../model/percpu.ts';
import type { ActorEvent, Request } from '../sim/events.ts';
import type { PageWalk } from './walk.ts';

export interface ReferenceViolation {
  checker: 'reference';
  kind: string;
  cpu: number;
  tick: number;
  message: string;
}

export interface ReferenceOptions {
  /** the machine as configured: the model boots its own first chunk from it */
  boot: Omit<BootSpec, 'distance'> & {
    groupsByNode: boolean;
    /** node_distance(), nodes x nodes, when not 10 local and 20 remote */
    nodeDistance?: readonly (readonly number[])[];
  };
  /** the boot lines the allocator printed, held against the model's */
  bootLines: readonly string[];
  sab: SharedArrayBuffer;
  walk: PageWalk;
  /** per CPU, the offset of its copy from a percpu pointer (the checker's own, from boot) */
  offsets: readonly number[];
  /**
   * The allocator's chunk `id` as it is now, read only: its area map (a positive entry is a
   * free area of that size, a negative one in use) and hints. With it, an operation that
   * leaves a map other than 2.6.36 would is reported at that operation, not at a later
   * placement it happens to change.
   */
  chunk?: (id: number) => ChunkState | undefined;
}

/** What the allocator's chunk holds, for comparing with the model's. */
export interface ChunkState {
  map: ArrayLike<number>;
  used: number;
  contigHint: number;
  freeSize: number;
}

const PAGE_SIZE = 4096;

/** A populated area whose pages' nodes are checked when the reply gives its pointer. */
interface Pending {
  chunk: number;
  off: number;
  pages: number[];
}

export class ReferenceChecker {
  readonly violations: ReferenceViolation[] = [];
  private readonly model: PercpuModel;
  private readonly cpuToNode: readonly number[];
  private readonly nodeStartPfn: readonly number[];
  private readonly vm: boolean;
  /** each task's request, and for a batch the item it is on */
  private readonly requests = new Map<number, { req: Request; item: number }>();
  private readonly pending = new Map<number, Pending[]>();
  /** per task, the failure reasons 2.6.36 gives its allocations, in order, for the reply to carry */
  private readonly reasons = new Map<number, string[]>();
  /** tasks waiting for pcpu_lock, in the order they came */
  private readonly tickets: number[] = [];
  /** per task, whether 2.6.36 schedules reclaim after the area it just gave back */
  private readonly reclaimDue = new Map<number, boolean>();
  /** the task holding pcpu_lock, or null */
  private pcpuLockOwner: number | null = null;
  private off = false;
  /**
   * A walk that decided to extend a map or create a chunk while slab is down: 2.6.36 counts
   * the failing pcpu_mem_alloc() as part of the walk, the allocator traces the attempt and the
   * failure apart. Held until the next tracepoint of the task says how it ended.
   */
  private early: { task: number; size: number; align: number; reserved: boolean; what: string } | null = null;

  constructor(private readonly opts: ReferenceOptions) {
    const b = opts.boot;
    const table = b.nodeDistance;
    const distance = !b.groupsByNode
      ? null
      : table
        ? (x: number, y: number) => table[b.cpuToNode[x]!]![b.cpuToNode[y]!]!
        : nodeDistance(b.cpuToNode);
    const booted = bootFirstChunk({ ...b, distance });
    this.model = booted.model;
    this.cpuToNode = b.cpuToNode;
    this.vm = b.backend === 'vm';
    this.nodeStartPfn = readHeader(opts.sab).nodeStartPfn;
    // the first line names where boot memory put the chunk, which only the machine knows
    const want = booted.lines.slice(1);
    const got = opts.bootLines.slice(1, want.length + 1);
    const i = want.findIndex((l, k) => l !== got[k]);
    if (i >= 0)
      this.diverged(
        'boot',
        -1,
        0,
        `boot line ${i + 2}: 2.6.36 prints "${want[i]}"; this allocator printed "${got[i] ?? ''}"`,
      );
  }

  private diverged(kind: string, cpu: number, tick: number, message: string): void {
    if (this.off) return;
    this.off = true;
    this.violations.push({ checker: 'reference', kind, cpu, tick, message });
  }

  observe(e: ActorEvent): void {
    if (this.off) return;
    switch (e.type) {
      case 'arrive':
        this.requests.set(e.task, { req: e.req, item: 0 });
        break;
      case 'block':
        if (e.lock === 'pcpu_lock') this.tickets.push(e.task);
        break;
      case 'lock':
        if (e.lock === 'pcpu_lock') {
          this.handover(e);
          this.pcpuLockOwner = e.task;
        }
        break;
      case 'unlock':
        if (e.lock === 'pcpu_lock' && this.pcpuLockOwner === e.task) this.pcpuLockOwner = null;
        break;
      case 'kernel':
        this.step(e, e.trace);
        break;
      case 'lifecycle':
        if (e.state === 'slabOnline') this.apply('lifecycle', e, 'slab online', () => this.model.applySlabOnline());
        break;
      case 'done':
        if (e.kind === 'alloc' || e.kind === 'alloc_batch') this.failures(e);
        this.placed(e);
        this.requests.delete(e.task);
        break;
      default:
        break;
    }
  }

  /** pcpu_lock is a ticket lock: the task that gets it is the one that has waited longest. */
  private handover(e: Extract<ActorEvent, { type: 'lock' }>): void {
    const at = this.tickets.indexOf(e.task);
    if (at > 0 || (at < 0 && this.tickets.length))
      this.diverged(
        'lock-handover',
        e.cpu,
        e.tick,
        `pcpu_lock is a ticket spinlock in 2.6.36, handed over in arrival order: task ${this.tickets[0]} has waited longest, but task ${e.task} got it`,
      );
    if (at >= 0) this.tickets.splice(at, 1);
  }

  /** The operation a tracepoint says happened, held against the model. */
  private step(e: ActorEvent, t: PcpuTrace): void {
    const m = this.model;
    const early = this.early;
    if (early && early.task === e.task) {
      // without slab the map cannot grow nor a chunk be made: the walk ends in that failure,
      // or the allocator went ahead anyway
      this.early = null;
      const action =
        t.op === 'alloc-failed'
          ? { kind: 'fail' as const, reason: t.reason }
          : t.op === 'extended'
            ? { kind: 'extend' as const, chunk: t.chunk, to: t.to }
            : { kind: 'create' as const };
      this.apply('placement', e, early.what, () =>
        m.applyAllocStep(early.task, early.size, early.align, early.reserved, action),
      );
      if (t.op === 'alloc-failed') {
        this.next(e.task);
        this.failedWith(e.task, t.reason);
      }
      return;
    }
    switch (t.op) {
      case 'walk': {
        const what = `pcpu_alloc(size=${t.size}, align=${t.align}${t.reserved ? ', reserved' : ''}) on ${who(e.cpu)}`;
        const r = this.requests.get(e.task);
        const asked = r && askOf(r.req, r.item);
        if (asked && (asked.size !== t.size || asked.align !== t.align || asked.reserved !== t.reserved))
          return this.diverged(
            'routing',
            e.cpu,
            e.tick,
            `${who(e.cpu)} asked for size=${asked.size} align=${asked.align}${asked.reserved ? ' from the reserved chunk' : ''}; the allocator walked for ${what}`,
          );
        const action =
          t.outcome === 'area'
            ? { kind: 'area' as const, chunk: t.chunk, off: t.off }
            : t.outcome === 'extend'
              ? { kind: 'extend' as const, chunk: t.chunk, to: t.to }
              : t.outcome === 'create'
                ? { kind: 'create' as const }
                : { kind: 'fail' as const, reason: t.reason };
        if (t.outcome === 'extend' || t.outcome === 'create') {
          const d = m.decideAlloc(t.size, t.align, t.reserved);
          const early = t.outcome === 'extend' ? 'failed to extend area map' : 'failed to allocate new chunk';
          if (d.kind === 'fail' && d.reason.startsWith(early)) {
            this.early = { task: e.task, size: t.size, align: t.align, reserved: t.reserved, what };
            return;
          }
        }
        let d: AllocDecision | null = null;
        this.apply(t.outcome === 'fail' ? 'failure' : 'placement', e, what, () => {
          d = m.applyAllocStep(e.task, t.size, t.align, t.reserved, action);
          if (t.outcome === 'fail') {
            this.next(e.task);
            this.failedWith(e.task, t.reason);
          }
        });
        if (d) this.sameMaps(e, what, touched(d));
        return;
      }
      case 'extended':
        return this.apply('extension', e, `pcpu_extend_area_map(chunk ${t.chunk}, ${t.to})`, () =>
          m.applyMapExtended(e.task, t.chunk, t.to),
        );
      case 'created':
        return this.apply('creation', e, 'pcpu_create_chunk()', () => void m.applyChunkCreated(e.task, t.chunk));
      case 'populated': {
        const pages = t.pages.flatMap((page) => this.cpuToNode.map((node, cpu) => ({ cpu, page, node })));
        this.apply('population', e, `pcpu_populate_chunk(chunk ${t.chunk}, off ${t.off}, size ${t.size})`, () =>
          m.applyPopulated(e.task, pages),
        );
        if (this.vm && t.pages.length) {
          const list = this.pending.get(e.task) ?? [];
          list.push({ chunk: t.chunk, off: t.off, pages: t.pages });
          this.pending.set(e.task, list);
        }
        this.next(e.task);
        return;
      }
      case 'alloc-failed':
        this.apply('failure', e, `pcpu_alloc() failing "${t.reason}"`, () => m.applyAllocFailed(e.task, t.reason));
        this.next(e.task);
        this.failedWith(e.task, t.reason);
        return;
      case 'area-freed': {
        // the model frees in the step where the map changed; whether reclaim is due waits for 'freed'
        const what = `free_percpu(chunk ${t.chunk}, off ${t.off})`;
        this.apply('free', e, what, () => this.reclaimDue.set(e.task, m.applyAreaFreed(t.chunk, t.off)));
        this.sameMaps(e, what, [t.chunk]);
        return;
      }
      case 'freed': {
        const due = this.reclaimDue.get(e.task);
        this.reclaimDue.delete(e.task);
        if (due !== undefined)
          this.apply('free', e, `free_percpu(chunk ${t.chunk}, off ${t.off})`, () =>
            m.checkReclaimScheduled(t.chunk, due, t.reclaim),
          );
        return;
      }
      case 'reclaim':
        return this.apply(
          'reclaim',
          e,
          t.spareFirst ? 'pcpu_reclaim()' : 'shutdown',
          () => void m.applyReclaimPass(t.destroyed, t.spareFirst),
        );
      case 'destroyed': {
        const pages = this.vm ? t.pages.flatMap((page) => this.cpuToNode.map((_, cpu) => ({ cpu, page }))) : [];
        return this.apply(
          'reclaim',
          e,
          `pcpu_destroy_chunk(chunk ${t.chunk})`,
          () => void m.applyChunkDestroyed(t.chunk, pages),
        );
      }
      case 'init-late':
        return this.apply('lifecycle', e, 'percpu_init_late()', () => {
          m.applyInitLate();
          if (t.early.length)
            throw new Divergence(
              '2.6.36 moves the first chunk and the reserved chunk off their __initdata maps (memory freed after boot)',
              `left ${t.early.map((c) => (c === -1 ? 'the reserved chunk' : `chunk ${c}`)).join(' and ')} on an early map`,
            );
        });
    }
  }

  private failedWith(task: number, reason: string): void {
    const list = this.reasons.get(task) ?? [];
    list.push(reason);
    this.reasons.set(task, list);
  }

  /** The reasons a failed allocation's reply gives are 2.6.36's, in order. */
  private failures(e: Extract<ActorEvent, { type: 'done' }>): void {
    const want = this.reasons.get(e.task) ?? [];
    this.reasons.delete(e.task);
    const replies = 'batch' in e.reply ? e.reply.batch : [e.reply];
    const got = replies.flatMap((r) => (!r.ok && !r.refused && !r.bug ? [r.error] : []));
    const i = got.findIndex((g, k) => g !== want[k]);
    if (i >= 0 && want[i] !== undefined)
      this.diverged(
        'failure',
        e.cpu,
        e.tick,
        `the reply to ${who(e.cpu)}'s allocation says "${got[i]}": 2.6.36's pcpu_alloc() fails it with "${want[i]}"`,
      );
  }

  /** A batch moves on to its next item once one allocation has ended. */
  private next(task: number): void {
    const r = this.requests.get(task);
    if (r) r.item++;
  }

  /** After an operation on `ids` under pcpu_lock: each of those chunks holds the map and hints 2.6.36's does. */
  private sameMaps(e: ActorEvent, what: string, ids: readonly number[]): void {
    const read = this.opts.chunk;
    // the maps are comparable only where pcpu_lock keeps every other operation out; an
    // operation done without it is the race detector's and the lock checker's to report
    if (!read || this.off || this.pcpuLockOwner !== e.task) return;
    for (const id of ids) {
      const got = read(id);
      const want = this.model.chunks.get(id);
      if (!got || !want) continue; // a chunk one side lacks is the operation's own divergence
      // entry for entry in the allocator's encoding; the maps are spelled out only when they differ
      const entry = (i: number): number => (want.free[i] ? want.sizes[i]! : -want.sizes[i]!);
      let at = -1;
      for (let i = 0; i < Math.max(want.offs.length, got.used) && at < 0; i++)
        if (i >= want.offs.length || i >= got.used || entry(i) !== got.map[i]) at = i;
      const name = id === RESERVED ? 'the reserved chunk' : `chunk ${id}`;
      if (at >= 0) {
        const wantMap = want.offs.map((_, i) => entry(i));
        const gotMap = Array.from({ length: got.used }, (_, i) => got.map[i]!);
        return this.diverged(
          'map',
          e.cpu,
          e.tick,
          `${what}: 2.6.36 leaves ${name}'s area map as ${mapText(wantMap, at)}; this allocator's is ${mapText(gotMap, at)} (entry ${at} differs; a positive entry is free, a negative one in use)`,
        );
      }
      if (got.contigHint !== want.contigHint || got.freeSize !== want.freeSize)
        return this.diverged(
          'map',
          e.cpu,
          e.tick,
          `${what}: 2.6.36 leaves ${name} with contig_hint ${want.contigHint} and free_size ${want.freeSize}; this allocator has contig_hint ${got.contigHint} and free_size ${got.freeSize}`,
        );
    }
  }

  private apply(kind: string, e: ActorEvent, what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof Divergence)) throw err;
      this.diverged(kind, e.cpu, e.tick, `${what}: ${err.message}`);
    }
  }

  /**
   * A reply with pointers: each page the allocation populated must have come from the node of
   * the CPU whose unit it backs (alloc_pages_node() with cpu_to_node()), read off the checker's
   * own page-table walk.
   */
  private placed(e: Extract<ActorEvent, { type: 'done' }>): void {
    const list = this.pending.get(e.task);
    if (!list) return;
    this.pending.delete(e.task);
    const replies = 'batch' in e.reply ? e.reply.batch : [e.reply];
    for (const p of list) {
      const r = replies.find((x) => x.ok && 'ptr' in x && x.chunk === p.chunk && x.off === p.off);
      if (!r || !('ptr' in r)) continue;
      const base = r.ptr - p.off;
      for (const page of p.pages)
        for (let cpu = 0; cpu < this.cpuToNode.length; cpu++) {
          const phys = this.opts.walk.walk(base + this.opts.offsets[cpu]! + page * PAGE_SIZE);
          if (phys < 0) continue; // unmapped again already: a later free took it
          const node = this.nodeOf(phys / PAGE_SIZE);
          if (node !== this.cpuToNode[cpu])
            return this.diverged(
              'node',
              e.cpu,
              e.tick,
              `page ${page} of chunk ${p.chunk}, cpu ${cpu}'s unit: 2.6.36 takes it from node ${this.cpuToNode[cpu]} (alloc_pages_node(cpu_to_node(${cpu}))); this allocator took it from node ${node}`,
            );
        }
    }
  }

  private nodeOf(pfn: number): number {
    let n = 0;
    while (n + 1 < this.nodeStartPfn.length - 1 && this.nodeStartPfn[n + 1]! <= pfn) n++;
    return n;
  }
}

/** The chunks a walk changed: those it searched in vain (their hints) and the one it carved. */
function touched(d: AllocDecision): number[] {
  const ids = d.scans.map((s) => s.chunk);
  if (d.kind === 'area') ids.push(d.chunk);
  return ids;
}

/** A map in brackets, whole when short, else the entries around `at`. */
function mapText(map: readonly number[], at: number): string {
  if (map.length <= 12) return `[${map.join(', ')}]`;
  const from = Math.max(0, at - 4);
  const to = Math.min(map.length, at + 5);
  return `[${from ? '..., ' : ''}${map.slice(from, to).join(', ')}${to < map.length ? ', ...' : ''}] (${map.length} entries)`;
}

const who = (cpu: number): string => (cpu < 0 ? 'the reclaim worker' : `CPU ${cpu}`);

/** What a request asks of its `item`-th allocation. */
function askOf(req: Request, item: number): { size: number; align: number; reserved: boolean } | null {
  if (req.kind === 'alloc') return { size: req.size, align: req.align, reserved: req.reserved ?? false };
  if (req.kind === 'alloc_batch') {
    const it = req.items[item];
    return it ? { size: it.size, align: it.align, reserved: it.reserved ?? false } : null;
  }
  return null;
}
