/**
 * Oracles over the allocator's replies alone: the checker keeps its own record of every live
 * area (pointer, size, chunk, offset) from the replies the CPUs received, and never looks at
 * the allocator's tables. From that record:
 *
 *  - no two live areas overlap (one interval set over percpu pointers, so areas of different
 *    chunks are compared too);
 *  - every copy of a new area is aligned as asked;
 *  - every copy of every live area stays mapped, by the checker's own page-table walk;
 *  - before slab is online, no chunk is created and no first-chunk map describes more areas
 *    than an early map of PERCPU_DYNAMIC_EARLY_SLOTS entries can hold; and an early
 *    allocation that fails to extend the map while the map still had plenty of room is wrong.
 *
 * Areas count as given up when their free is asked for, as the isolation tracker does.
 */
import type { ActorEvent, AllocReply } from '../sim/events.ts';
import { ReplyFollower } from './replies.ts';
import type { PageWalk } from './walk.ts';

export type AreaKind = 'overlap' | 'misaligned' | 'unpopulated' | 'leak' | 'early-chunk' | 'early-map-limit';

export interface AreaViolation {
  checker: 'areas';
  kind: AreaKind;
  cpu: number;
  tick: number;
  message: string;
}

interface Area {
  ptr: number;
  size: number;
  chunk: number;
  off: number;
  cpu: number;
}

/** What the oracle knows of the machine: the copies' offsets and the first chunk's dynamic part. */
export interface AreaOracleConfig {
  offsets: readonly number[];
  walk: PageWalk;
  /** [start, end) of the first chunk's dynamic area, in chunk offsets (boot parameters) */
  dynamic: [number, number];
  /** [start, end) of the reserved area, or null */
  reserved: [number, number] | null;
}

/**
 * PERCPU_DYNAMIC_EARLY_SLOTS of 2.6.36: the entries of an early map. The oracle keeps its own
 * copy, so that a change to the kernel's constant is something it can see.
 */
const PERCPU_DYNAMIC_EARLY_SLOTS = 128;

const chunkName = (c: number): string => (c === -1 ? 'the reserved chunk' : `chunk ${c}`);

export class AreaOracle {
  readonly violations: AreaViolation[] = [];
  /** live areas sorted by pointer */
  private readonly live: Area[] = [];
  private readonly replies = new ReplyFollower({
    allocated: (cpu, tick, ask, reply) => this.served(cpu, tick, ask.size, ask.align, reply),
    freed: (ptr) => this.forget(ptr),
  });
  private slab = false;

  constructor(private readonly cfg: AreaOracleConfig) {}

  private add(kind: AreaKind, cpu: number, tick: number, message: string): void {
    if (this.violations.length < 50) this.violations.push({ checker: 'areas', kind, cpu, tick, message });
  }

  /** The index of the first live area whose pointer is >= ptr. */
  private lowerBound(ptr: number): number {
    let lo = 0;
    let hi = this.live.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.live[mid]!.ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  observe(e: ActorEvent): void {
    if (e.type === 'lifecycle' && e.state === 'slabOnline') this.slab = true;
    else this.replies.observe(e);
  }

  private forget(ptr: number): void {
    const i = this.lowerBound(ptr);
    if (this.live[i]?.ptr === ptr) this.live.splice(i, 1);
  }

  private served(cpu: number, tick: number, size: number, align: number, r: AllocReply): void {
    if (!r.ok) {
      this.failed(cpu, tick, size, r.error);
      return;
    }
    const a: Area = { ptr: r.ptr, size, chunk: r.chunk, off: r.off, cpu };
    const where = `${size} bytes at ${chunkName(a.chunk)} offset ${a.off} (pointer ${a.ptr.toString(16)}) for cpu ${cpu}`;
    // alignment of every copy: ALIGN()'s mask clears the bits of align - 1 (for a power of two,
    // that is alignment); chunks and units start on pages, so the page offset decides
    for (let c = 0; c < this.cfg.offsets.length; c++)
      if ((((a.ptr + this.cfg.offsets[c]!) % 4096) & (align - 1)) !== 0) {
        this.add(
          'misaligned',
          cpu,
          tick,
          `misaligned: ${where}: cpu ${c}'s copy at ${(a.ptr + this.cfg.offsets[c]!).toString(16)} is not aligned to ${align}`,
        );
        break;
      }
    // overlap with the neighbours in pointer order
    const i = this.lowerBound(a.ptr);
    const prev = this.live[i - 1];
    const next = this.live[i];
    for (const o of [prev, next])
      if (o && o.ptr < a.ptr + a.size && a.ptr < o.ptr + o.size)
        this.add(
          'overlap',
          cpu,
          tick,
          `overlap: ${where} overlaps the live area of ${o.size} bytes at ${chunkName(o.chunk)} offset ${o.off} made by cpu ${o.cpu}`,
        );
    this.live.splice(i, 0, a);
    if (!this.slab) this.early(cpu, tick, a);
  }

  /** Before slab: the early map's limit holds. */
  private early(cpu: number, tick: number, a: Area): void {
    if (a.chunk > 0) {
      this.add(
        'early-chunk',
        cpu,
        tick,
        `early-chunk: ${chunkName(a.chunk)} served an allocation before slab is online; a new chunk needs kmalloc for its map`,
      );
      return;
    }
    const n = this.live.filter((x) => x.chunk === a.chunk).length;
    // one entry for the static (and reserved) head, one per area
    if (n + 1 > PERCPU_DYNAMIC_EARLY_SLOTS)
      this.add(
        'early-map-limit',
        cpu,
        tick,
        `early-map-limit: ${n} areas live in ${chunkName(a.chunk)} before slab is online; an early map of ${PERCPU_DYNAMIC_EARLY_SLOTS} entries cannot describe them`,
      );
  }

  /** The map entries a first-chunk map needs at least, from the live areas: head, areas, gaps. */
  private entriesNeeded(chunk: number): number {
    const range = chunk === -1 ? this.cfg.reserved : this.cfg.dynamic;
    if (!range) return 1;
    const areas = this.live.filter((x) => x.chunk === chunk).sort((x, y) => x.off - y.off);
    let entries = 1 + areas.length;
    let end = range[0];
    for (const x of areas) {
      if (x.off - end >= 4) entries++; // a gap of an int or more is a free entry
      end = x.off + x.size;
    }
    if (range[1] - end >= 4) entries++;
    return entries;
  }

  private failed(cpu: number, tick: number, size: number, error: string): void {
    if (this.slab || !/extend area map/.test(error)) return;
    const chunk = /reserved/.test(error) ? -1 : 0;
    const needed = this.entriesNeeded(chunk);
    // the kernel extends when fewer than two entries are spare; allow for tiny heads and tails
    if (needed + 2 + 4 <= PERCPU_DYNAMIC_EARLY_SLOTS)
      this.add(
        'early-map-limit',
        cpu,
        tick,
        `early-map-limit: an early allocation of ${size} bytes failed ("${error}") while ${chunkName(chunk)}'s map needs only about ${needed} of its ${PERCPU_DYNAMIC_EARLY_SLOTS} entries`,
      );
  }

  /** Every copy of every live area is mapped (the checker's own walk). */
  checkPopulated(tick: number): void {
    for (const a of this.live)
      for (let c = 0; c < this.cfg.offsets.length; c++)
        if (!this.cfg.walk.mapped(a.ptr + this.cfg.offsets[c]!, a.size)) {
          this.add(
            'unpopulated',
            a.cpu,
            tick,
            `unpopulated: cpu ${c}'s copy of the live area of ${a.size} bytes at ${chunkName(a.chunk)} offset ${a.off} (made by cpu ${a.cpu}) is not mapped`,
          );
          return;
        }
  }

  /**
   * With no request in flight, the areas in use in the chunk maps are exactly the live areas
   * the CPUs were given: each starts where its reply said and is at most a few bytes longer
   * (a tail under an int stays in the area; a later head under an int may join it). The maps
   * are the subject here; nothing is asked of the allocator's functions.
   */
  checkMaps(
    chunks: readonly { id: number; map: Int32Array; map_used: number; immutable: boolean }[],
    tick: number,
  ): void {
    const replies = new Map<string, Area>();
    for (const a of this.live) replies.set(`${a.chunk}:${a.off}`, a);
    let matched = 0;
    for (const ch of chunks) {
      let off = 0;
      for (let i = 0; i < ch.map_used; off += Math.abs(ch.map[i++]!)) {
        const e = ch.map[i]!;
        if (e >= 0 || (i === 0 && ch.immutable)) continue; // free, or the first chunk's static head
        const a = replies.get(`${ch.id}:${off}`);
        if (!a) {
          this.add(
            'leak',
            -1,
            tick,
            `leak: ${chunkName(ch.id)} has ${-e} bytes in use at offset ${off} that no CPU was given (or that was freed)`,
          );
          return;
        }
        if (-e < a.size || -e > a.size + 6) {
          this.add(
            'overlap',
            a.cpu,
            tick,
            `overlap: ${chunkName(ch.id)}'s map holds ${-e} bytes at offset ${off} for an area of ${a.size} bytes`,
          );
          return;
        }
        matched++;
      }
    }
    if (matched !== this.live.length) {
      const lost = this.live.find((a) => !chunks.some((ch) => ch.id === a.chunk));
      this.add(
        'leak',
        -1,
        tick,
        `lost: ${this.live.length - matched} live area(s) are not in use in any chunk map${lost ? ` (one: ${lost.size} bytes at ${chunkName(lost.chunk)} offset ${lost.off}, made by cpu ${lost.cpu})` : ''}`,
      );
    }
  }

  /** How many areas are live, by the replies. */
  get liveCount(): number {
    return this.live.length;
  }
}
