/**
 * A reference model of the 2.6.36 area-map allocator (mm/percpu.c, percpu-vm.c, percpu-km.c),
 * written from the kernel's rules and sharing no code with src/kernel. It is the
 * specification a run is held against: plain data (a chunk is an ordered list of areas,
 * slots are arrays of chunks), one rule per function, no concurrency of its own.
 *
 * Three ways in:
 *
 *  - decideAlloc() says, from the current state, what pcpu_alloc() does next under pcpu_lock:
 *    take an area, extend a map, create a chunk, or fail; with the rule behind it in words.
 *  - apply*() take the operations a real allocator performed, in the order it performed them
 *    under pcpu_lock, check each against 2.6.36 and apply it; a wrong one throws Divergence.
 *    One allocation at a time holds pcpu_alloc_mutex: its steps are applyAllocStep() for each
 *    walk of the slot lists, then applyMapExtended() / applyChunkCreated() (after which the
 *    walk restarts) or applyPopulated() (the end), or applyAllocFailed() when the machine
 *    refused it something. What only the machine decides comes in as input: when the reclaim
 *    work runs, and whether a page or chunk allocation failed.
 *  - alloc(), free(), reclaim(), ... are whole operations built from those steps, for the
 *    replayer and the tests.
 *
 * Chunks are numbered as the replay format numbers them: RESERVED (-1) for the static +
 * reserved chunk, 0 for the chunk serving dynamic requests in the first chunk, 1, 2, ... for
 * chunks created later, in creation order.
 *
 * One deliberate deviation, shared with docs/replay-format.md: a failed area search can move
 * the chunk being searched to slot 0, after which 2.6.36's list walk runs off its list; the
 * walk here carries on with the chunk that followed it, as list_for_each_entry_safe would.
 */

export const PAGE_SIZE = 4096;
/** slots go by the highest set bit of a size: sizes below 16 share slot 1 */
export const PCPU_SLOT_BASE_SHIFT = 5;
/** a created chunk's map starts with this many entries */
export const PCPU_DFL_MAP_ALLOC = 16;
/** the smallest unit, and the largest single allocation */
export const PCPU_MIN_UNIT_SIZE = 64 << 10;
/** entries of the __initdata maps the first chunk starts with */
export const PERCPU_DYNAMIC_EARLY_SLOTS = 128;
/** the first chunk's dynamic area is at least this large */
export const PERCPU_DYNAMIC_EARLY_SIZE = 12 << 10;
/** sizeof(int): smaller heads and tails are not split off */
export const SIZEOF_INT = 4;
/** allocation failures are printed this many times */
export const PCPU_WARN_LIMIT = 10;
/** the number of the static + reserved chunk */
export const RESERVED = -1;

export interface Area {
  off: number;
  size: number;
  free: boolean;
}

export interface Chunk {
  readonly id: number;
  /**
   * The areas in offset order, covering [0, extent) without gaps: area i starts at offs[i],
   * is sizes[i] bytes long and free or in use. Three lists side by side rather than a list
   * of objects, so a walk over the map reads memory in order; areasOf() gives the objects.
   */
  offs: number[];
  sizes: number[];
  free: boolean[];
  /** the bytes the map covers: a unit, or for the first chunk its static, reserved and dynamic part */
  readonly extent: number;
  freeSize: number;
  /** never below the largest free area; exact after a search that reached the end of the map */
  contigHint: number;
  /** map entries there is room for; the number of areas may not exceed it */
  mapAlloc: number;
  /** the map is one of the __initdata early maps (until percpu_init_late) */
  earlyMap: boolean;
  /** the first chunk: never populated or depopulated */
  readonly immutable: boolean;
  /** per page of a unit: populated in every unit */
  readonly populated: boolean[];
}

/** What setup_per_cpu_areas() decided: the numbers the allocator runs on. */
export interface Layout {
  unitSize: number;
  staticSize: number;
  reservedSize: number;
  dynSize: number;
  backend: 'vm' | 'km';
  /** node of each possible CPU */
  cpuToNode: readonly number[];
  /** unit of each possible CPU */
  cpuToUnit: readonly number[];
}

export type AllocAction =
  | { kind: 'area'; chunk: number; off: number }
  | { kind: 'extend'; chunk: number; to: number }
  | { kind: 'create' }
  | { kind: 'fail'; reason: string };

/** A chunk the walk searched without finding an area: its contig_hint becomes `hint`. */
export interface Scan {
  chunk: number;
  slot: number;
  hint: number;
}

/** Where an area goes inside a chunk, as pcpu_alloc_area() carves it. */
interface Fit {
  index: number;
  off: number;
  /** the area's size: the request plus a tail too small to split off */
  size: number;
  /** a free area split off in front */
  head: number;
  /** bytes in front given to the previous area instead (a tiny head, or one after a free area) */
  given: number;
  tail: number;
  /** contig_hint afterwards */
  hint: number;
}

export type AllocDecision = AllocAction & {
  /** chunks searched in vain before the decision, in walk order */
  scans: Scan[];
  /** the rule, in the kernel's words: "2.6.36 takes chunk 1 at offset 4096 (...)" */
  rule(): string;
  /** the slot the area was found on */
  slot?: number;
  fit?: Fit;
};

/** A page of one CPU's unit, and the node alloc_pages_node() is asked for it (the page allocator may fall back elsewhere when that node is empty). */
export interface UnitPage {
  cpu: number;
  page: number;
  node: number;
}

export interface PopulatePlan {
  chunk: number;
  /** the pages of every unit not yet populated in [PFN_DOWN(off), PFN_UP(off + size)) */
  pages: UnitPage[];
  rule(): string;
}

/** An operation that is not what 2.6.36 does here. */
export class Divergence extends Error {
  override readonly name = 'Divergence';
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${expected}; the allocator ${actual}`);
  }
}

export type Task = number | string;
type Request = { size: number; align: number; reserved: boolean };

/** The allocation holding pcpu_alloc_mutex, and where it is in pcpu_alloc(). */
interface InFlight extends Request {
  task: Task;
  phase: 'walk' | 'extend' | 'create' | 'populate';
  chunk: number;
  off: number;
  to: number;
}

export type AllocOutcome = { chunk: number; off: number } | { error: string };

/** What the machine decides for a whole operation; by default nothing fails. */
export interface MachineInputs {
  /** pcpu_create_chunk() got its memory (and vmalloc space) */
  createChunk?(): boolean;
  /** pcpu_populate_chunk() got every page */
  populate?(plan: PopulatePlan): boolean;
}

const fls = (x: number): number => (x === 0 ? 0 : 32 - Math.clz32(x));
/** ALIGN(): with a mask, so an alignment that is not a power of two clears the bits of align - 1 */
const alignUp = (off: number, align: number): number => (off + align - 1) & ~(align - 1);
const chunkName = (id: number): string => (id === RESERVED ? 'the reserved chunk' : `chunk ${id}`);

export class PercpuModel {
  readonly nrSlots: number;
  /** pcpu_slot[]: chunks in list order; the last slot holds wholly free chunks */
  readonly slots: Chunk[][];
  /**
   * Per slot, a bound no chunk's contig_hint on that list exceeds: a walk for a larger size
   * passes the whole list without looking at its chunks, as it would pass each of them. Raised
   * when a chunk joins a list or its hint grows; made exact by a walk that passes a whole list.
   * A cache of the walk's own test, not a rule: it changes no decision.
   */
  private readonly slotBound: number[];
  /** every live chunk by number, the reserved one included */
  readonly chunks = new Map<number, Chunk>();
  readonly reserved: Chunk | null;
  slab = false;
  lateInit = false;
  /** printk and WARN lines, as src/kernel writes them to dmesg */
  readonly log: string[] = [];
  private warnLimit = PCPU_WARN_LIMIT;
  private memAllocWarned = false;
  private nextId = 1;
  private inFlight: InFlight | null = null;
  /** chunks the reclaim pass unlinked and has not destroyed yet, in destruction order */
  private dying: number[] = [];

  /** pcpu_setup_first_chunk(): the first chunk's maps, on their early maps, and the slots. */
  constructor(readonly layout: Layout) {
    const { unitSize, staticSize, reservedSize, dynSize } = layout;
    this.nrSlots = this.sizeSlot(unitSize) + 2;
    this.slots = Array.from({ length: this.nrSlots }, () => []);
    this.slotBound = new Array<number>(this.nrSlots).fill(0);
    // with a reserved area, static + reserved is one chunk and the dynamic area another;
    // both cover the same memory, each marking the other's part in use
    const first = (id: number, inUse: number, free: number): Chunk => ({
      id,
      offs: free ? [0, inUse] : [0],
      sizes: free ? [inUse, free] : [inUse],
      free: free ? [false, true] : [false],
      extent: inUse + free,
      freeSize: free,
      contigHint: free,
      mapAlloc: PERCPU_DYNAMIC_EARLY_SLOTS,
      earlyMap: true,
      immutable: true,
      populated: new Array<boolean>(unitSize / PAGE_SIZE).fill(true),
    });
    this.reserved = reservedSize ? first(RESERVED, staticSize, reservedSize) : null;
    const dynamic = first(0, staticSize + reservedSize, dynSize);
    if (this.reserved) this.chunks.set(RESERVED, this.reserved);
    this.chunks.set(0, dynamic);
    this.relocate(dynamic, -1);
  }

  // ------------------------------------------------------------------ slots

  /** __pcpu_size_to_slot(): by the highest set bit; sizes below 16 share slot 1. */
  sizeSlot(size: number): number {
    return Math.max(fls(size) - PCPU_SLOT_BASE_SHIFT + 2, 1);
  }

  /** pcpu_size_to_slot(): where a walk for `size` starts; a whole unit names the last slot. */
  sizeToSlot(size: number): number {
    return size === this.layout.unitSize ? this.nrSlots - 1 : this.sizeSlot(size);
  }

  /** pcpu_chunk_slot(): slot 0 when the chunk cannot serve even an int, else by free size. */
  chunkSlot(c: Chunk): number {
    if (c.freeSize < SIZEOF_INT || c.contigHint < SIZEOF_INT) return 0;
    return this.sizeToSlot(c.freeSize);
  }

  /**
   * pcpu_chunk_relocate(): after a change, a chunk goes to the slot its sizes name: to the
   * head of that list when it moved up, to the tail when it moved down; it stays put when
   * its slot did not change. The reserved chunk is on no list.
   */
  private relocate(c: Chunk, oslot: number): void {
    const nslot = this.chunkSlot(c);
    if (c.id === RESERVED) return;
    // every change of a hint ends here, moved or not
    if (c.contigHint > this.slotBound[nslot]!) this.slotBound[nslot] = c.contigHint;
    if (oslot === nslot) return;
    this.unlink(c);
    if (oslot < nslot) this.slots[nslot]!.unshift(c);
    else this.slots[nslot]!.push(c);
  }

  private unlink(c: Chunk): void {
    for (const list of this.slots) {
      const i = list.indexOf(c);
      if (i >= 0) list.splice(i, 1);
    }
  }

  // ------------------------------------------------------------------ maps

  /**
   * pcpu_need_to_extend(): an allocation may split one area into three, so a map needs two
   * spare entries. Returns the new size (16 doubled until it has them), or 0.
   */
  needToExtend(c: Chunk): number {
    const used = c.offs.length;
    if (c.mapAlloc >= used + 2) return 0;
    let to = PCPU_DFL_MAP_ALLOC;
    while (to < used + 2) to *= 2;
    return to;
  }

  /**
   * pcpu_alloc_area()'s search: the first free area that holds `size` after aligning its
   * start. A head smaller than an int, or one behind a free area, goes to the previous area;
   * a larger head is split off as a free area. A tail smaller than an int stays in the area.
   * contig_hint becomes the largest free area seen when the scan reached the end of the map,
   * and otherwise only grows: it is a hint. Returns the fit, or the hint after a vain search.
   */
  findArea(c: Chunk, size: number, align: number): Fit | { hint: number } {
    let maxContig = 0;
    const { offs, sizes, free } = c;
    for (let index = 0; index < offs.length; index++) {
      if (!free[index]) continue;
      const start = offs[index]!;
      const areaSize = sizes[index]!;
      const off = alignUp(start, align);
      const head = off - start;
      if (areaSize < head + size) {
        maxContig = Math.max(maxContig, areaSize);
        continue;
      }
      const given = head && (head < SIZEOF_INT || free[index - 1]) ? head : 0;
      let tail = areaSize - head - size;
      if (tail < SIZEOF_INT) tail = 0;
      const kept = head - given;
      if (kept) maxContig = Math.max(maxContig, kept);
      if (tail) maxContig = Math.max(maxContig, tail);
      const isLast = index === offs.length - 1;
      const hint = isLast ? maxContig : Math.max(c.contigHint, maxContig);
      return { index, off, size: areaSize - head - tail, head: kept, given, tail, hint };
    }
    return { hint: maxContig };
  }

  /** pcpu_alloc_area()'s carving: splits the area as `fit` says and marks it in use. */
  private carve(c: Chunk, fit: Fit): void {
    const i = fit.index;
    if (fit.given) {
      c.sizes[i - 1]! += fit.given;
      if (!c.free[i - 1]) c.freeSize -= fit.given;
    }
    const offs = [fit.off];
    const sizes = [fit.size];
    const free = [false];
    if (fit.head) (offs.unshift(c.offs[i]!), sizes.unshift(fit.head), free.unshift(true));
    if (fit.tail) (offs.push(fit.off + fit.size), sizes.push(fit.tail), free.push(true));
    if (c.offs.length + offs.length - 1 > c.mapAlloc)
      throw new Error(`model: ${chunkName(c.id)} has no room in its map (BUG_ON in pcpu_split_block)`);
    c.offs.splice(i, 1, ...offs);
    c.sizes.splice(i, 1, ...sizes);
    c.free.splice(i, 1, ...free);
    c.freeSize -= fit.size;
    c.contigHint = fit.hint;
  }

  /**
   * pcpu_free_area(): marks the area at `off` free and merges it with free neighbours; the
   * hint grows to the merged area. Returns an explanation when no area in use starts there
   * (2.6.36 hits a BUG_ON), else null.
   */
  private freeArea(c: Chunk, off: number): string | null {
    let i = c.offs.indexOf(off);
    if (i < 0) return `${chunkName(c.id)} has no area at offset ${off} (BUG_ON(off != freeme))`;
    if (c.free[i]) return `the area at offset ${off} of ${chunkName(c.id)} is already free (BUG_ON(chunk->map[i] > 0))`;
    if (i === 0 && c.immutable) return `offset ${off} of ${chunkName(c.id)} is the static area`;
    const oslot = this.chunkSlot(c);
    c.free[i] = true;
    c.freeSize += c.sizes[i]!;
    if (c.free[i - 1]) {
      c.sizes[i - 1]! += c.sizes[i]!;
      removeArea(c, i--);
    }
    if (c.free[i + 1]) {
      c.sizes[i]! += c.sizes[i + 1]!;
      removeArea(c, i + 1);
    }
    c.contigHint = Math.max(c.sizes[i]!, c.contigHint);
    this.relocate(c, oslot);
    return null;
  }

  // ------------------------------------------------------------------ decisions

  /**
   * What pcpu_alloc() does next from the current state, for one walk under pcpu_lock. Nothing
   * changes until the decision is applied (but for the walk's own cache, slotBound).
   *
   * A reserved request goes to the reserved chunk when there is one, and nowhere else. Any
   * other request walks the slot lists from the request's slot upward, each list in order,
   * skipping chunks whose contig_hint is below the size; a chunk whose map lacks two spare
   * entries is extended first (impossible before slab: the early maps are all there is),
   * and the walk restarts afterwards. When no chunk has an area, a new chunk is created
   * (also impossible before slab) and the walk restarts.
   */
  decideAlloc(size: number, align: number, reserved: boolean): AllocDecision {
    // the rule is words for a report: built only when someone reads it, from values fixed now
    const req = (): string => `${size} bytes aligned ${align}`;
    if (!legal(size, align))
      return fail(
        `illegal size (${size}) or align (${align}) for percpu allocation`,
        [],
        () => `size must be 1..${PCPU_MIN_UNIT_SIZE} and align 1..${PAGE_SIZE}`,
      );
    const scans: Scan[] = [];
    const noMem = (what: string): string =>
      `${what}, and slab is not up: pcpu_mem_alloc() fails with WARN_ON_ONCE(!slab_is_available())`;

    if (reserved && this.reserved) {
      const c = this.reserved;
      const hint = c.contigHint;
      if (size > hint)
        return fail(
          'alloc from reserved chunk failed',
          scans,
          () => `contig_hint ${hint} of the reserved chunk < ${size}`,
        );
      const to = this.needToExtend(c);
      if (to) {
        if (!this.slab)
          return fail('failed to extend area map of reserved chunk', scans, () =>
            noMem(`the reserved chunk's map is full`),
          );
        const why = extendWhy(c, to);
        return { kind: 'extend', chunk: RESERVED, to, scans, rule: () => `2.6.36 extends ${why()}` };
      }
      const fit = this.findArea(c, size, align);
      if ('index' in fit)
        return {
          kind: 'area',
          chunk: RESERVED,
          off: fit.off,
          fit,
          scans,
          rule: () =>
            `2.6.36 takes the reserved chunk at offset ${fit.off} (reserved requests go to the reserved chunk only${fitWhy(fit, size)})`,
        };
      scans.push({ chunk: RESERVED, slot: -1, hint: fit.hint });
      return fail('alloc from reserved chunk failed', scans, () => `no free area of the reserved chunk holds ${req()}`);
    }

    const start = this.sizeToSlot(size);
    const passed = (): string =>
      scans.length
        ? `; searched in vain: ${scans.map((s) => `${chunkName(s.chunk)} on slot ${s.slot} (contig_hint now ${s.hint})`).join(', ')}`
        : '';
    for (let slot = start; slot < this.nrSlots; slot++) {
      if (size > this.slotBound[slot]!) continue;
      let bound = 0;
      for (const c of this.slots[slot]!) {
        if (size > c.contigHint) {
          if (c.contigHint > bound) bound = c.contigHint;
          continue;
        }
        const to = this.needToExtend(c);
        if (to) {
          if (!this.slab)
            return fail('failed to extend area map', scans, () => noMem(`${chunkName(c.id)}'s map is full`) + passed());
          const why = extendWhy(c, to);
          return {
            kind: 'extend',
            chunk: c.id,
            to,
            scans,
            rule: () =>
              `2.6.36 extends ${why()} (slot ${slot}, the walk from slot ${start} reached it${passed()}), then restarts the walk`,
          };
        }
        const fit = this.findArea(c, size, align);
        if ('index' in fit)
          return {
            kind: 'area',
            chunk: c.id,
            off: fit.off,
            slot,
            fit,
            scans,
            rule: () =>
              `2.6.36 takes ${chunkName(c.id)} at offset ${fit.off} (slot ${slot}, the first chunk on the walk from slot ${start} with contig_hint >= ${size} and a free area for ${req()}${passed()}${fitWhy(fit, size)})`,
          };
        // a vain search leaves the chunk on its slot, or moves it down to slot 0: never ahead of the walk
        scans.push({ chunk: c.id, slot, hint: fit.hint });
        if (c.contigHint > bound) bound = c.contigHint; // its hint only falls when the search is applied
      }
      // the whole list passed: no hint on it is above what was seen
      this.slotBound[slot] = bound;
    }
    const last = this.nrSlots - 1;
    const none = (): string => `no chunk on slots ${start}..${last} has a free area for ${req()}${passed()}`;
    if (!this.slab) return fail('failed to allocate new chunk', scans, () => noMem(none()));
    return {
      kind: 'create',
      scans,
      rule: () => `2.6.36 creates a chunk: ${none()}; the new chunk goes to the head of the last slot`,
    };
  }

  /**
   * pcpu_populate_chunk(): the pages of [PFN_DOWN(off), PFN_UP(off + size)) not yet
   * populated, in every possible CPU's unit, each from the node of that unit's CPU.
   * percpu-km chunks and the first chunk are populated whole: nothing to do.
   */
  populatePlan(chunkId: number, off: number, size: number): PopulatePlan {
    const c = this.chunk(chunkId);
    const first = Math.floor(off / PAGE_SIZE);
    const end = Math.ceil((off + size) / PAGE_SIZE);
    const pages: UnitPage[] = [];
    for (let page = first; page < end; page++)
      if (!c.populated[page]) this.layout.cpuToNode.forEach((node, cpu) => pages.push({ cpu, page, node }));
    const rule = (): string => {
      const which = pages.length ? `pages ${[...new Set(pages.map((p) => p.page))].join(', ')}` : 'nothing';
      return (
        `2.6.36 populates ${which} of ${chunkName(chunkId)} for offset ${off} size ${size}` +
        (pages.length
          ? `, in every CPU's unit, each page from that CPU's node (${this.nodesText()})`
          : ' (already populated)')
      );
    };
    return { chunk: chunkId, pages, rule };
  }

  private nodesText(): string {
    return this.layout.cpuToNode.map((n, cpu) => `cpu ${cpu}: node ${n}`).join(', ');
  }

  /**
   * pcpu_reclaim(): every chunk on the last slot but the first of its list, in the order it
   * destroys them (it moves each to the head of a to-do list, so the last one goes first).
   * Machine shutdown (not a kernel path) spares none.
   */
  reclaimPlan(spareFirst = true): number[] {
    const last = this.slots[this.nrSlots - 1]!;
    return last
      .filter((_, i) => !(spareFirst && i === 0))
      .map((c) => c.id)
      .reverse();
  }

  // ------------------------------------------------------------------ operations performed

  /**
   * One walk of pcpu_alloc() under pcpu_lock, ending as `actual` says. Checks it against
   * decideAlloc() and applies it: the vain searches lower those chunks' hints, an area is
   * carved, a failure is printed. Throws Divergence when 2.6.36 would have done otherwise,
   * or when another task holds pcpu_alloc_mutex. Returns the decision.
   */
  applyAllocStep(task: Task, size: number, align: number, reserved: boolean, actual: AllocAction): AllocDecision {
    return this.takeStep(task, size, align, reserved, this.decideAlloc(size, align, reserved), actual);
  }

  /** applyAllocStep() with the decision already made from this state; `actual` absent when it is the model's own. */
  private takeStep(
    task: Task,
    size: number,
    align: number,
    reserved: boolean,
    d: AllocDecision,
    actual?: AllocAction,
  ): AllocDecision {
    const f = this.inFlight;
    const illegal = !legal(size, align); // refused before pcpu_alloc_mutex is taken
    if (!illegal) this.mutexFor(task, () => `walked the slot lists for ${size} bytes (task ${task})`);
    if (f && !illegal && (f.phase !== 'walk' || f.size !== size || f.align !== align || f.reserved !== reserved))
      throw new Divergence(
        `2.6.36 continues task ${f.task}'s allocation of ${f.size} bytes (${f.phase})`,
        `walked for ${size} bytes aligned ${align}${reserved ? ' (reserved)' : ''}`,
      );
    if (actual && !sameAction(d, actual)) throw new Divergence(d.rule(), describe(actual));
    for (const s of d.scans) {
      const c = this.chunk(s.chunk);
      const oslot = this.chunkSlot(c);
      c.contigHint = s.hint;
      this.relocate(c, oslot);
    }
    if (d.kind === 'fail') {
      this.failed(size, align, d.reason);
      if (!illegal) this.inFlight = null;
      return d;
    }
    if (d.kind === 'area') {
      const c = this.chunk(d.chunk);
      const oslot = this.chunkSlot(c);
      this.carve(c, d.fit!);
      this.relocate(c, oslot);
    }
    const phase = d.kind === 'area' ? 'populate' : d.kind;
    const chunk = d.kind === 'area' || d.kind === 'extend' ? d.chunk : NaN; // a chunk yet to be created
    this.inFlight = {
      task,
      size,
      align,
      reserved,
      phase,
      chunk,
      off: d.kind === 'area' ? d.off : -1,
      to: d.kind === 'extend' ? d.to : 0,
    };
    return d;
  }

  /**
   * pcpu_extend_area_map()'s swap under pcpu_lock: the map grows to `to` entries unless it
   * already has that many. The walk restarts next.
   */
  applyMapExtended(task: Task, chunkId: number, to: number): void {
    const f = this.expectPhase(task, 'extend', `extended ${chunkName(chunkId)}'s map to ${to} entries`);
    if (f.chunk !== chunkId || f.to !== to)
      throw new Divergence(
        `2.6.36 extends ${chunkName(f.chunk)}'s map to ${f.to} entries`,
        `extended ${chunkName(chunkId)}'s map to ${to}`,
      );
    const c = this.chunk(chunkId);
    if (to > c.mapAlloc) {
      c.mapAlloc = to;
      c.earlyMap = false;
    }
    f.phase = 'walk';
  }

  /**
   * pcpu_create_chunk() succeeded and pcpu_alloc() links the chunk in: one free area the
   * size of a unit, a 16-entry map, at the head of the last slot. percpu-km chunks come
   * populated (one block of pages), percpu-vm ones empty. The walk restarts next.
   * Returns the new chunk's number (`id`, when given, must be it).
   */
  applyChunkCreated(task: Task, id?: number): number {
    const f = this.expectPhase(task, 'create', `created chunk ${id ?? ''}`.trim());
    const want = this.nextId;
    if (id !== undefined && id !== want)
      throw new Divergence(
        `2.6.36 numbers the new chunk ${want} (chunks are numbered in creation order)`,
        `numbered it ${id}`,
      );
    this.nextId++;
    const { unitSize } = this.layout;
    const c: Chunk = {
      id: want,
      offs: [0],
      sizes: [unitSize],
      free: [true],
      extent: unitSize,
      freeSize: unitSize,
      contigHint: unitSize,
      mapAlloc: PCPU_DFL_MAP_ALLOC,
      earlyMap: false,
      immutable: false,
      populated: new Array<boolean>(unitSize / PAGE_SIZE).fill(this.layout.backend === 'km'),
    };
    this.chunks.set(want, c);
    this.relocate(c, -1);
    f.phase = 'walk';
    return want;
  }

  /**
   * The area's pages are in place and the allocation returns. `pages`, when given, are the
   * pages the allocator populated, with their nodes: they must be the plan's. Returns the plan.
   */
  applyPopulated(task: Task, pages?: readonly UnitPage[]): PopulatePlan {
    const f = this.expectPhase(task, 'populate', 'populated an area');
    const plan = this.populatePlan(f.chunk, f.off, f.size);
    const key = (p: UnitPage): string => `cpu ${p.cpu} page ${p.page} from node ${p.node}`;
    const wrong = pages && pageDiff(plan.pages.map(key), pages.map(key));
    if (wrong) throw new Divergence(plan.rule(), `populated ${wrong}`);
    const c = this.chunk(f.chunk);
    for (const p of plan.pages) c.populated[p.page] = true;
    this.inFlight = null;
    return plan;
  }

  /**
   * The machine refused the allocation in flight something: memory for a new chunk, for a
   * bigger map, or a page. A failed population gives the area back (pcpu_free_area(), no
   * reclaim) and nothing stays populated. Prints the failure as pcpu_alloc() does.
   */
  applyAllocFailed(task: Task, reason: string): void {
    const f = this.inFlight;
    if (!f || f.task !== task || f.phase === 'walk')
      throw new Divergence(`2.6.36 has no allocation of task ${task} waiting on the machine`, `failed it: ${reason}`);
    const want =
      f.phase === 'create'
        ? 'failed to allocate new chunk'
        : f.phase === 'populate'
          ? 'failed to populate'
          : f.chunk === RESERVED
            ? 'failed to extend area map of reserved chunk'
            : 'failed to extend area map';
    if (reason !== want) throw new Divergence(`2.6.36 fails this ${f.phase} with "${want}"`, `failed with "${reason}"`);
    if (f.phase === 'populate') this.freeArea(this.chunk(f.chunk), f.off);
    this.failed(f.size, f.align, reason);
    this.inFlight = null;
  }

  /**
   * free_percpu(): the area at `off` goes back. When that leaves the chunk wholly free and
   * another chunk is on the last slot, the reclaim work is scheduled. `scheduled`, when
   * given, is whether the allocator scheduled it. Returns whether 2.6.36 schedules it.
   */
  applyAreaFreed(chunkId: number, off: number, scheduled?: boolean): boolean {
    const c = this.chunks.get(chunkId);
    if (!c || this.dying.includes(chunkId))
      throw new Divergence(`${chunkName(chunkId)} is not a live chunk in 2.6.36`, `freed offset ${off} in it`);
    if (this.inFlight?.phase === 'populate' && this.inFlight.chunk === chunkId && this.inFlight.off === off)
      throw new Divergence(`the area at offset ${off} of ${chunkName(chunkId)} is still being populated`, 'freed it');
    const bug = this.freeArea(c, off);
    if (bug) throw new Divergence(`2.6.36 BUG()s: ${bug}`, `freed offset ${off} of ${chunkName(chunkId)}`);
    const last = this.slots[this.nrSlots - 1]!;
    const reclaim = c.freeSize === this.layout.unitSize && last.some((x) => x !== c);
    if (scheduled !== undefined) this.checkReclaimScheduled(chunkId, reclaim, scheduled);
    return reclaim;
  }

  /**
   * After a free of `chunkId` for which 2.6.36 schedules reclaim or not (`due`, what
   * applyAreaFreed() returned): throws Divergence when the allocator did otherwise.
   */
  checkReclaimScheduled(chunkId: number, due: boolean, scheduled: boolean): void {
    if (scheduled === due) return;
    const whole = this.chunks.get(chunkId)?.freeSize === this.layout.unitSize;
    throw new Divergence(
      due
        ? `2.6.36 schedules pcpu_reclaim: ${chunkName(chunkId)} is wholly free and another chunk is on the last slot`
        : `2.6.36 schedules no reclaim: ${whole ? `${chunkName(chunkId)} is the only wholly free chunk` : `${chunkName(chunkId)} is not wholly free`}`,
      scheduled ? 'scheduled it' : 'did not',
    );
  }

  /**
   * pcpu_reclaim()'s pass under both locks: the chunks reclaimPlan() names leave the slot
   * lists. It holds pcpu_alloc_mutex until applyChunkDestroyed() has seen each of them.
   * `destroyed`, when given, is what the allocator took off, in destruction order.
   */
  applyReclaimPass(destroyed?: readonly number[], spareFirst = true): number[] {
    this.mutexFor(null, 'ran pcpu_reclaim');
    const plan = this.reclaimPlan(spareFirst);
    if (destroyed && destroyed.join() !== plan.join())
      throw new Divergence(
        `2.6.36 reclaims ${plan.length ? plan.map(chunkName).join(', ') : 'nothing'} (every chunk on the last slot${spareFirst ? ' but the first of its list' : ''}, the last one first)`,
        `reclaimed ${destroyed.length ? destroyed.map(chunkName).join(', ') : 'nothing'}`,
      );
    for (const id of plan) this.unlink(this.chunk(id));
    this.dying = [...plan];
    return plan;
  }

  /**
   * pcpu_depopulate_chunk() of the whole unit and pcpu_destroy_chunk(), for the next chunk
   * of the reclaim pass. `pages`, when given, are the unit pages the allocator freed (a
   * page's node is wherever it landed, so only which pages counts). Returns the pages given
   * back, with the nodes they were asked from.
   */
  applyChunkDestroyed(chunkId: number, pages?: readonly { cpu: number; page: number }[]): UnitPage[] {
    if (this.dying[0] !== chunkId)
      throw new Divergence(
        this.dying.length ? `2.6.36 destroys ${chunkName(this.dying[0]!)} next` : '2.6.36 destroys no chunk now',
        `destroyed ${chunkName(chunkId)}`,
      );
    const c = this.chunk(chunkId);
    const freed: UnitPage[] = [];
    if (this.layout.backend === 'vm')
      c.populated.forEach((p, page) => {
        if (p) this.layout.cpuToNode.forEach((node, cpu) => freed.push({ cpu, page, node }));
      });
    const key = (p: { cpu: number; page: number }): string => `cpu ${p.cpu} page ${p.page}`;
    const wrong = pages && pageDiff(freed.map(key), pages.map(key));
    if (wrong)
      throw new Divergence(
        `2.6.36 frees every populated page of ${chunkName(chunkId)} in every unit${this.layout.backend === 'km' ? ' (percpu-km: the block goes whole, no page by page)' : ''}`,
        `freed ${wrong}`,
      );
    this.dying.shift();
    this.chunks.delete(chunkId);
    return freed;
  }

  /** mm_init(): slab is up, so maps can grow and chunks can be created. */
  applySlabOnline(): void {
    if (this.slab) throw new Divergence('slab comes online once', 'brought it online again');
    this.slab = true;
  }

  /**
   * percpu_init_late(): the first and reserved chunks leave their __initdata maps for
   * allocated copies of the same size. Placement does not change. It needs slab (its map
   * comes from pcpu_mem_alloc(), BUG_ON(!map)) and runs once (it is __init).
   */
  applyInitLate(): void {
    if (!this.slab)
      throw new Divergence(
        'percpu_init_late() needs slab: pcpu_mem_alloc() fails and BUG_ON(!map) fires',
        'ran it before',
      );
    if (this.lateInit) throw new Divergence('percpu_init_late() runs once (it is __init)', 'ran it again');
    for (const c of [this.chunk(0), this.reserved]) if (c) c.earlyMap = false;
    this.lateInit = true;
  }

  /** At shutdown: start_kernel() runs percpu_init_late() right after slab comes up. Returns the problem, or null. */
  lateInitMissing(): string | null {
    return this.slab && !this.lateInit
      ? 'slab came online but percpu_init_late() never ran: the first chunk still uses its __initdata map'
      : null;
  }

  // ------------------------------------------------------------------ whole operations

  /** __alloc_percpu() / __alloc_reserved_percpu(), start to end, asking `m` what only the machine knows. */
  alloc(size: number, align: number, reserved: boolean, m: MachineInputs = {}, task: Task = 'alloc'): AllocOutcome {
    for (;;) {
      const d = this.takeStep(task, size, align, reserved, this.decideAlloc(size, align, reserved));
      switch (d.kind) {
        case 'fail':
          return { error: d.reason };
        case 'extend':
          this.applyMapExtended(task, d.chunk, d.to);
          continue;
        case 'create':
          if (m.createChunk?.() === false) {
            this.applyAllocFailed(task, 'failed to allocate new chunk');
            return { error: 'failed to allocate new chunk' };
          }
          this.applyChunkCreated(task);
          continue;
        case 'area':
          if (m.populate?.(this.populatePlan(d.chunk, d.off, size)) === false) {
            this.applyAllocFailed(task, 'failed to populate');
            return { error: 'failed to populate' };
          }
          this.applyPopulated(task);
          return { chunk: d.chunk, off: d.off };
      }
    }
  }

  /** free_percpu(), and the reclaim it schedules run to completion. Returns the chunks destroyed. */
  free(chunkId: number, off: number): number[] {
    return this.applyAreaFreed(chunkId, off) ? this.reclaim() : [];
  }

  /** pcpu_reclaim() start to end (or machine shutdown with spareFirst false). Returns the chunks destroyed. */
  reclaim(spareFirst = true): number[] {
    const plan = this.applyReclaimPass(undefined, spareFirst);
    for (const id of plan) this.applyChunkDestroyed(id);
    return plan;
  }

  // ------------------------------------------------------------------ helpers

  chunk(id: number): Chunk {
    const c = this.chunks.get(id);
    if (!c) throw new Divergence(`${chunkName(id)} does not exist in 2.6.36`, `used ${chunkName(id)}`);
    return c;
  }

  private expectPhase(task: Task, phase: InFlight['phase'], did: string): InFlight {
    const f = this.inFlight;
    if (!f || f.task !== task || f.phase !== phase)
      throw new Divergence(
        f
          ? `2.6.36 is at ${f.phase} of task ${f.task}'s allocation of ${f.size} bytes`
          : `2.6.36 has no allocation of task ${task} in flight`,
        did,
      );
    return f;
  }

  /** pcpu_alloc_mutex: one allocation (task), or reclaim (null), at a time. */
  private mutexFor(task: Task | null, what: string | (() => string)): void {
    const f = this.inFlight;
    const did = (): string => (typeof what === 'string' ? what : what());
    if (this.dying.length)
      throw new Divergence(
        `pcpu_reclaim holds pcpu_alloc_mutex until it has destroyed ${this.dying.map(chunkName).join(', ')}`,
        did(),
      );
    if (f && (task === null || f.task !== task))
      throw new Divergence(`task ${f.task}'s allocation of ${f.size} bytes holds pcpu_alloc_mutex`, did());
  }

  /** pcpu_alloc()'s failure exits: a WARN for an illegal request, else a rate-limited printk. */
  private failed(size: number, align: number, reason: string): void {
    if (reason.startsWith('illegal')) {
      this.log.push(`WARNING: ${reason}`);
      return;
    }
    const needsMemory = !this.slab && /extend|new chunk/.test(reason);
    if (needsMemory && !this.memAllocWarned) {
      this.memAllocWarned = true;
      this.log.push('WARNING: at mm/percpu.c pcpu_mem_alloc(): WARN_ON_ONCE(!slab_is_available())');
    }
    if (!this.warnLimit) return;
    this.log.push(`PERCPU: allocation failed, size=${size} align=${align}, ${reason}`);
    if (!--this.warnLimit) this.log.push('PERCPU: limit reached, disable warning');
  }
}

/** size and align are size_t: whole numbers; size up to PCPU_MIN_UNIT_SIZE, align up to PAGE_SIZE, neither 0. */
function legal(size: number, align: number): boolean {
  return (
    Number.isInteger(size) &&
    size > 0 &&
    size <= PCPU_MIN_UNIT_SIZE &&
    Number.isInteger(align) &&
    align > 0 &&
    align <= PAGE_SIZE
  );
}

function fail(reason: string, scans: Scan[], why: () => string): AllocDecision {
  return { kind: 'fail', reason, scans, rule: () => `2.6.36 fails with "${reason}" (${why()})` };
}

/** The words for a map extension, from the map's size now (it changes once the extension is applied). */
function extendWhy(c: Chunk, to: number): () => string {
  const { id, mapAlloc } = c;
  const used = c.offs.length;
  return () => `${chunkName(id)}'s map from ${mapAlloc} to ${to} entries (${used} used + 2 spare > ${mapAlloc})`;
}

function fitWhy(fit: Fit, size: number): string {
  const parts: string[] = [];
  if (fit.given) parts.push(`the ${fit.given}-byte head goes to the area before`);
  if (fit.head) parts.push(`a free head of ${fit.head} bytes is split off`);
  if (fit.tail) parts.push(`a free tail of ${fit.tail} bytes is split off`);
  if (fit.size > size) parts.push(`the ${fit.size - size}-byte tail stays in the area`);
  return parts.length ? `; ${parts.join(', ')}` : '';
}

/** What `got` has that `want` lacks and the reverse, in words; null when they hold the same. */
function pageDiff(want: string[], got: string[]): string | null {
  const w = new Set(want);
  const g = new Set(got);
  const extra = got.filter((k) => !w.has(k));
  const missing = want.filter((k) => !g.has(k));
  if (!extra.length && !missing.length) return null;
  return `${extra.length ? extra.join(', ') : 'the right pages'}${missing.length ? ` but not ${missing.join(', ')}` : ''}`;
}

function sameAction(d: AllocDecision, a: AllocAction): boolean {
  switch (a.kind) {
    case 'area':
      return d.kind === 'area' && d.chunk === a.chunk && d.off === a.off;
    case 'extend':
      return d.kind === 'extend' && d.chunk === a.chunk && d.to === a.to;
    case 'create':
      return d.kind === 'create';
    case 'fail':
      return d.kind === 'fail' && d.reason === a.reason;
  }
}

function describe(a: AllocAction): string {
  switch (a.kind) {
    case 'area':
      return `took ${chunkName(a.chunk)} at offset ${a.off}`;
    case 'extend':
      return `extended ${chunkName(a.chunk)}'s map to ${a.to} entries`;
    case 'create':
      return 'created a chunk';
    case 'fail':
      return `failed with "${a.reason}"`;
  }
}

/** Area i leaves the map (merged into a neighbour). */
function removeArea(c: Chunk, i: number): void {
  c.offs.splice(i, 1);
  c.sizes.splice(i, 1);
  c.free.splice(i, 1);
}

/** A chunk's areas as objects, in offset order: for reading and reports, not for the walk. */
export function areasOf(c: Chunk): Area[] {
  return c.offs.map((off, i) => ({ off, size: c.sizes[i]!, free: c.free[i]! }));
}
