/**
 * mm/percpu.c as of 2.6.36: the area-map allocator.
 *
 * Every chunk has num_possible_cpus() units of pcpu_unit_size bytes. An allocation takes
 * the same offset in every unit; per_cpu_ptr(p, cpu) reaches CPU cpu's copy. Each chunk keeps
 * an array of signed area sizes (positive free, negative in use) that is searched first fit;
 * chunks sit on slot lists by free size so that the fullest chunks are tried first.
 *
 * Locking (2.6.36): pcpu_alloc_mutex serializes allocation and reclaim, and so protects
 * chunk creation, population and the vm areas. pcpu_lock, a spinlock, protects the slot
 * lists, the area maps and the chunk index; the allocation path drops it wherever it may
 * sleep. free_percpu() takes only pcpu_lock. The kernel paths below are generators that
 * yield at each of those points (see steps.ts); whoever drives them decides what happens
 * there.
 */
import type { Machine } from '../mem/machine.ts';
import { BUG_ON, KernelBug } from './bug.ts';
import { PCPU_ALIGN_CLASSES, PCPU_NO_FAIL, PcpuChunk, RESERVED_CHUNK_ID } from './chunk.ts';
import {
  NR_CPUS,
  PAGE_SIZE,
  PCPU_DFL_MAP_ALLOC,
  PCPU_MIN_UNIT_SIZE,
  PCPU_SLOT_BASE_SHIFT,
  PCPU_WARN_LIMIT,
  PERCPU_DYNAMIC_EARLY_SIZE,
  PERCPU_DYNAMIC_EARLY_SLOTS,
  SIZEOF_INT,
  fls,
} from './constants.ts';
import { pcpu_dump_alloc_info } from './alloc-info.ts';
import type { KernelImage } from './image.ts';
import { BUG_NAMES, type BugName, type KernelFault, type KernelPath, type LockBug, with_lock_bug } from './mutants.ts';
import type { KcsanWatch, SharedKind } from './kcsan.ts';
import { ListHead, list_entries, list_move, list_move_tail } from './list.ts';
import type { PcpuAllocInfo, PcpuBackend, PcpuTrace, PercpuEnv } from './percpu-internal.ts';
import {
  type KTask,
  type LockName,
  MUTEX_LOCK,
  MUTEX_UNLOCK,
  SCHEDULE_RECLAIM,
  SPIN_LOCK,
  SPIN_UNLOCK,
  sleepStep,
  watchpoint,
} from './steps.ts';

/** What pcpu_alloc() returns: the percpu pointer (0 for NULL) and where it was placed. */
export interface AllocResult {
  ptr: number;
  chunk: PcpuChunk | null;
  off: number;
  /** the kernel's reason string when ptr is 0 */
  error: string | null;
}

/** The kernel's log: every printk and WARN, in order. */
export interface KernelLog {
  printk(line: string): void;
  warn(line: string): void;
}

export interface PercpuOptions {
  machine: Machine;
  image: KernelImage;
  /** builds the chunk backend (percpu-vm or percpu-km) for this allocator */
  backend: (pc: Percpu) => PcpuBackend;
  log?: KernelLog;
  /** bugs to build in (see mutants.ts); none by default */
  mutants?: readonly KernelFault[];
  /** what the allocator calls out to; by default nothing checks or watches */
  env?: PercpuEnv;
}

/** The environment of an allocator nobody checks: the synchronous replay's. */
const NO_ENV: PercpuEnv = Object.freeze({ lockdep_assert_held: null, kcsan: null, tracepoint: null });

/** Counters behind the percpu_stats dump (CONFIG_PERCPU_STATS, adapted to 2.6.36). */
export interface PcpuStats {
  nr_alloc: number;
  nr_dealloc: number;
  nr_cur_alloc: number;
  nr_max_alloc: number;
  nr_chunks: number;
  nr_max_chunks: number;
  min_alloc_size: number;
  max_alloc_size: number;
  nr_failed: number;
  nr_reclaimed: number;
}

export class Percpu {
  readonly machine: Machine;
  readonly image: KernelImage;
  readonly backend: PcpuBackend;
  readonly dmesg: string[] = [];
  readonly warnings: string[] = [];
  private readonly log: KernelLog | undefined;
  private readonly mutants: Readonly<Record<BugName, boolean>>;
  /** any bug is built in: the paths ask on every page, and an allocator without bugs answers at once */
  private readonly any_mutant: boolean;
  /** the lock bugs by the path they break; null when there are none */
  private readonly lock_bugs: ReadonlyMap<KernelPath, readonly LockBug[]> | null;
  /** what the allocator calls out to, as it was built with */
  readonly env: PercpuEnv;
  /** lockdep_assert_held(): checks that the running path holds `lock`; null when nothing checks */
  readonly lockdep_assert_held: ((lock: LockName, where: string) => void) | null;
  /** the data-race detector watching every shared object (see kcsan.ts); null when none does */
  readonly kcsan: KcsanWatch | null;
  /** paths yield a watchpoint before touching shared objects, so that other tasks can run there */
  readonly kcsan_delay: boolean;
  /** the tracepoints (see PcpuTrace); null when nothing listens */
  readonly tracepoint: ((t: PcpuTrace) => void) | null;

  // --- the globals of mm/percpu.c ---
  pcpu_unit_pages = 0;
  pcpu_unit_size = 0;
  pcpu_nr_units = 0;
  pcpu_atom_size = 0;
  /** the first chunk's areas, as pcpu_setup_first_chunk() was given them */
  pcpu_static_size = 0;
  pcpu_reserved_size = 0;
  pcpu_dyn_size = 0;
  pcpu_alloc_size = 0;
  pcpu_nr_slots = 0;
  pcpu_low_unit_cpu = NR_CPUS;
  pcpu_high_unit_cpu = NR_CPUS;
  /** address of the first chunk (unit 0's start) */
  pcpu_base_addr = 0;
  /** cpu -> unit */
  pcpu_unit_map: number[] = [];
  /** cpu -> offset of its unit from a chunk's base_addr */
  pcpu_unit_offsets: number[] = [];
  pcpu_nr_groups = 0;
  pcpu_group_offsets: number[] = [];
  pcpu_group_sizes: number[] = [];
  /** the chunk that serves dynamic allocations in the first chunk */
  pcpu_first_chunk: PcpuChunk | null = null;
  /** the static + reserved chunk when a reserved area exists */
  pcpu_reserved_chunk: PcpuChunk | null = null;
  pcpu_reserved_chunk_limit = 0;
  /** the chunk lists by slot; the last one holds fully free chunks */
  pcpu_slot: ListHead[] = [];
  /** __per_cpu_offset[]: per_cpu_ptr(p, cpu) == p + __per_cpu_offset[cpu] */
  __per_cpu_offset: number[] = [];

  /** slab_is_available(): metadata can be allocated only once this is true */
  slab_available = false;
  /** percpu_init_late() has run */
  late_init_done = false;
  private warn_limit = PCPU_WARN_LIMIT;
  private mem_alloc_warned = false;
  /** bytes of metadata (maps and chunk structs) allocated with pcpu_mem_alloc() */
  meta_bytes = 0;

  /** live chunks by number (the page -> chunk link resolves through this) */
  readonly chunks = new Map<number, PcpuChunk>();
  private next_chunk_id = 1;
  readonly stats: PcpuStats = {
    nr_alloc: 0,
    nr_dealloc: 0,
    nr_cur_alloc: 0,
    nr_max_alloc: 0,
    nr_chunks: 0,
    nr_max_chunks: 0,
    min_alloc_size: 0,
    max_alloc_size: 0,
    nr_failed: 0,
    nr_reclaimed: 0,
  };

  constructor(opts: PercpuOptions) {
    this.machine = opts.machine;
    this.image = opts.image;
    this.log = opts.log;
    const faults = opts.mutants ?? [];
    const on = new Set(faults.filter((f) => typeof f === 'string'));
    this.mutants = Object.fromEntries(BUG_NAMES.map((n) => [n, on.has(n)])) as Record<BugName, boolean>;
    this.any_mutant = on.size > 0;
    const lock_bugs = new Map<KernelPath, LockBug[]>();
    for (const f of faults) if (typeof f !== 'string') lock_bugs.set(f.path, [...(lock_bugs.get(f.path) ?? []), f]);
    this.lock_bugs = lock_bugs.size ? lock_bugs : null;
    this.env = opts.env ?? NO_ENV;
    this.lockdep_assert_held = this.env.lockdep_assert_held;
    this.kcsan = this.env.kcsan;
    this.kcsan_delay = this.kcsan?.delay === true;
    this.tracepoint = this.env.tracepoint;
    this.backend = opts.backend(this);
    if (this.mutants['pt-gen-before-clear']) this.machine.vm.genBeforeClear = true;
  }

  /** Is this bug built in (see mutants.ts)? */
  mutant(name: BugName): boolean {
    return this.any_mutant && this.mutants[name];
  }

  /** A kernel path's steps, with its locks taken as the lock bugs built in for it say. */
  private path<R>(name: KernelPath, task: KTask<R>): KTask<R> {
    const bugs = this.lock_bugs?.get(name);
    if (bugs) for (const bug of bugs) task = with_lock_bug(task, bug);
    return task;
  }

  /** A kernel path is about to touch `chunk`: it must not have been destroyed. */
  pcpu_chunk_check_alive(chunk: PcpuChunk, where: string): void {
    if (chunk.destroyed)
      throw new KernelBug(
        'USE_AFTER_FREE',
        `${where}: chunk ${chunkName(chunk)} was destroyed while still in use (use after free)`,
        'chunk->destroyed',
      );
  }

  /** num_possible_cpus() == nr_cpu_ids: every CPU of the machine is possible. */
  get nr_cpu_ids(): number {
    return this.machine.cpus;
  }

  get is_setup(): boolean {
    return this.pcpu_first_chunk !== null;
  }

  printk(line: string): void {
    this.dmesg.push(line);
    this.log?.printk(line);
  }

  WARN(line: string): void {
    this.warnings.push(line);
    this.dmesg.push(`WARNING: ${line}`);
    this.log?.warn(line);
  }

  // ------------------------------------------------------- shared objects

  /** READ_ONCE() of a shared object: reported to the race detector, if one watches. No lock. */
  READ(kind: SharedKind, chunk: PcpuChunk | null, where: string, index = -1): void {
    this.kcsan?.access(kind, chunk, index, 'read', where);
  }

  /** WRITE_ONCE() of a shared object: reported to the race detector, if one watches. No lock. */
  WRITE(kind: SharedKind, chunk: PcpuChunk | null, where: string, index = -1): void {
    this.kcsan?.access(kind, chunk, index, 'write', where);
  }

  // ------------------------------------------------------------------ slots

  /** fls(size) - PCPU_SLOT_BASE_SHIFT + 2, at least 1. No lock: arithmetic only. Returns the slot. */
  __pcpu_size_to_slot(size: number): number {
    return Math.max(fls(size) - PCPU_SLOT_BASE_SHIFT + 2, 1);
  }

  /** The slot whose chunks may serve `size`; a whole unit names the last slot. No lock. Returns the slot. */
  pcpu_size_to_slot(size: number): number {
    if (size === this.pcpu_unit_size) return this.pcpu_nr_slots - 1;
    return this.__pcpu_size_to_slot(size);
  }

  /** The slot a chunk belongs on; slot 0 holds chunks that can serve nothing. Needs pcpu_lock. Returns the slot. */
  pcpu_chunk_slot(chunk: PcpuChunk): number {
    this.READ('map', chunk, 'pcpu_chunk_slot');
    if (chunk.free_size < SIZEOF_INT || chunk.contig_hint < SIZEOF_INT) return 0;
    return this.pcpu_size_to_slot(chunk.free_size);
  }

  /**
   * Moves a chunk to the slot its free size names: to the front when it moved up, to the
   * back when it moved down. The reserved chunk is on no list. Needs pcpu_lock.
   */
  pcpu_chunk_relocate(chunk: PcpuChunk, oslot: number): void {
    this.lockdep_assert_held?.('pcpu_lock', 'pcpu_chunk_relocate');
    const nslot = this.pcpu_chunk_slot(chunk);
    if (chunk !== this.pcpu_reserved_chunk && oslot !== nslot) {
      this.WRITE('slots', null, 'pcpu_chunk_relocate');
      if (oslot < nslot !== this.mutant('relocate-wrong-end')) list_move(chunk, this.pcpu_slot[nslot]!);
      else list_move_tail(chunk, this.pcpu_slot[nslot]!);
      chunk.linked = true;
    }
  }

  // ------------------------------------------------------------ metadata

  /**
   * pcpu_mem_alloc(): metadata memory (area maps, chunk structs). Before slab is online this
   * warns once and fails, which is what bounds early allocation. No lock; may sleep.
   * Returns the map, or null.
   */
  pcpu_mem_alloc(entries: number): Int32Array | null {
    if (!this.slab_available && !this.mutant('meta-before-slab')) {
      if (!this.mem_alloc_warned) {
        this.mem_alloc_warned = true;
        this.WARN('at mm/percpu.c pcpu_mem_alloc(): WARN_ON_ONCE(!slab_is_available())');
      }
      return null;
    }
    this.meta_bytes += entries * 4;
    return new Int32Array(entries);
  }

  /** pcpu_mem_free(): gives metadata back. The early maps are __initdata and are not counted. */
  pcpu_mem_free(map: Int32Array | null, early: boolean): void {
    if (map && !early) this.meta_bytes -= map.length * 4;
  }

  /**
   * pcpu_need_to_extend(): one allocation can split one area into three, so a map needs two
   * spare entries. Needs pcpu_lock. Returns the new map size, or 0 when there is room.
   */
  pcpu_need_to_extend(chunk: PcpuChunk): number {
    this.READ('map', chunk, 'pcpu_need_to_extend');
    if (chunk.map_alloc >= chunk.map_used + 2) return 0;
    let new_alloc = PCPU_DFL_MAP_ALLOC;
    while (new_alloc < chunk.map_used + 2) new_alloc *= 2;
    return new_alloc;
  }

  /**
   * pcpu_extend_area_map(): allocates the bigger map with no lock held, then swaps it in
   * under pcpu_lock unless someone extended the map meanwhile. Needs pcpu_alloc_mutex, not
   * pcpu_lock; sleeps. Returns 0, or -ENOMEM.
   */
  pcpu_extend_area_map(chunk: PcpuChunk, new_alloc: number): KTask<number> {
    return this.path('pcpu_extend_area_map', this.__pcpu_extend_area_map(chunk, new_alloc));
  }

  /** pcpu_extend_area_map()'s steps, before any lock bug. */
  private *__pcpu_extend_area_map(chunk: PcpuChunk, new_alloc: number): KTask<number> {
    let fresh = this.pcpu_mem_alloc(new_alloc);
    if (!fresh) return -12;
    yield sleepStep('pcpu_extend_area_map', chunk.id);

    yield SPIN_LOCK;
    if (this.kcsan_delay) yield watchpoint('pcpu_extend_area_map');
    this.pcpu_chunk_check_alive(chunk, 'pcpu_extend_area_map');
    let old: Int32Array | null = null;
    let oldEarly = false;
    this.READ('map', chunk, 'pcpu_extend_area_map');
    if (new_alloc > chunk.map_alloc) {
      this.WRITE('map', chunk, 'pcpu_extend_area_map');
      old = chunk.map;
      oldEarly = chunk.early_map;
      fresh.set(old.subarray(0, chunk.map_alloc));
      chunk.map_alloc = new_alloc;
      chunk.map = fresh;
      chunk.early_map = false;
      fresh = null;
    }
    this.tracepoint?.({ op: 'extended', chunk: chunk.id, to: new_alloc });
    yield SPIN_UNLOCK;

    // freed outside the lock: vfree() must not run under a spinlock
    this.pcpu_mem_free(old, oldEarly);
    this.pcpu_mem_free(fresh, false);
    return 0;
  }

  // ------------------------------------------------------------ area map

  /**
   * pcpu_split_block(): turns map[i] into head, the area, and tail (head and tail optional).
   * The caller made room with pcpu_extend_area_map(). Needs pcpu_lock.
   */
  pcpu_split_block(chunk: PcpuChunk, i: number, head: number, tail: number): void {
    const nr_extra = (head ? 1 : 0) + (tail ? 1 : 0);
    const map = chunk.map;
    BUG_ON(chunk.map_alloc < chunk.map_used + nr_extra, 'chunk->map_alloc < chunk->map_used + nr_extra');
    map.copyWithin(i + nr_extra, i, chunk.map_used);
    chunk.map_used += nr_extra;
    if (head) {
      map[i + 1] = map[i]! - head;
      map[i++] = head;
    }
    if (tail) {
      map[i++]! -= tail;
      map[i] = tail;
    }
  }

  /**
   * pcpu_alloc_area(): first fit of `size` bytes aligned to `align` in a chunk's map.
   * A head smaller than an int, or one that follows a free area, is merged backwards; a tail
   * smaller than an int stays inside the new area. contig_hint becomes exact when the scan
   * reached the end of the map. Only the offset is allocated, nothing is populated.
   * Needs pcpu_lock and a map with two spare entries. Returns the offset, or -1.
   */
  pcpu_alloc_area(chunk: PcpuChunk, size: number, align: number): number {
    this.lockdep_assert_held?.('pcpu_lock', 'pcpu_alloc_area');
    if (chunk.destroyed) this.pcpu_chunk_check_alive(chunk, 'pcpu_alloc_area');
    this.WRITE('map', chunk, 'pcpu_alloc_area');
    const oslot = this.pcpu_chunk_slot(chunk);
    const map = chunk.map;
    const mask = (this.mutant('area-ignores-align') ? 1 : align) - 1;
    // a power-of-two alignment has a class in the failed-search memo (see PcpuChunk.fail_size)
    const align_class = (mask & (mask + 1)) === 0 ? 32 - Math.clz32(mask) : -1;
    if (align_class >= 0 && size >= chunk.fail_size[align_class]!) {
      this.pcpu_chunk_relocate(chunk, oslot);
      return -1;
    }
    let max_contig = 0;
    let max_room = -1; // the most any free area had beyond its head: a size above it fits nowhere
    // the kernel's loop is "for (i = 0, off = 0; i < map_used; off += abs(map[i++]))"; it is
    // written out so that runs of allocated entries cost one load and one add each, a free
    // area that does not fit costs no more than its hints, and it starts past the leading
    // entries in use (PcpuChunk.scan_i). What only the area found needs comes after the loop.
    let i = chunk.scan_i;
    let off = chunk.scan_off;
    let free_i = -1; // the first free entry met, and its offset: where the next walk may start
    let free_off = 0;
    let head = 0; // padding for the alignment
    const used = chunk.map_used;

    for (; i < used; i++) {
      const m = map[i]!;
      if (m < 0) {
        off -= m;
        continue;
      }
      head = ((off + mask) & ~mask) - off;
      if (m >= head + size) break;
      if (free_i < 0) {
        free_i = i;
        free_off = off;
      }
      if (m > max_contig) max_contig = m;
      if (m - head > max_room) max_room = m - head;
      off += m;
    }

    if (i < used) {
      if (free_i < 0) {
        free_i = i;
        free_off = off;
      }
      const is_last = i + 1 === used;
      if (i === 0 && head !== 0) BUG_ON(true, 'i == 0 && head != 0');

      // entries before the first free one stay in use, and keep their offsets: entry i - 1 may
      // grow by a tiny head below, but it starts where it did
      if (free_i < i) {
        chunk.scan_i = free_i;
        chunk.scan_off = free_off;
      } else if (i > 0) {
        chunk.scan_i = i - 1;
        chunk.scan_off = off + map[i - 1]!; // in use: off minus its size
      }

      // a tiny head, or one after a free area, goes to the previous area
      if (head && (head < SIZEOF_INT || map[i - 1]! > 0)) {
        if (map[i - 1]! > 0) map[i - 1]! += head;
        else {
          map[i - 1]! -= head;
          chunk.free_size -= head;
        }
        map[i]! -= head;
        off += head;
        head = 0;
      }

      // a tiny tail is kept in the area
      let tail = map[i]! - head - size;
      if (tail < SIZEOF_INT) tail = 0;

      if (head || tail) {
        this.pcpu_split_block(chunk, i, head, tail);
        if (head) {
          i++;
          off += head;
          max_contig = Math.max(map[i - 1]!, max_contig);
        }
        if (tail) max_contig = Math.max(map[i + 1]!, max_contig);
      }

      if (is_last)
        chunk.contig_hint = max_contig; // the whole map was scanned
      else chunk.contig_hint = Math.max(chunk.contig_hint, max_contig);

      chunk.free_size -= map[i]!;
      map[i] = -map[i]!;
      pcpu_forget_failures(chunk);

      this.pcpu_chunk_relocate(chunk, oslot);
      return off;
    }

    chunk.contig_hint = max_contig; // the whole map was scanned
    if (free_i >= 0) {
      chunk.scan_i = free_i;
      chunk.scan_off = free_off;
    } else {
      chunk.scan_i = i; // every entry is in use
      chunk.scan_off = off;
    }
    if (align_class >= 0) {
      const fail = chunk.fail_size;
      for (let k = align_class; k < PCPU_ALIGN_CLASSES; k++) if (max_room + 1 < fail[k]!) fail[k] = max_room + 1;
      chunk.fail_known = true;
    }
    this.pcpu_chunk_relocate(chunk, oslot);
    return -1;
  }

  /**
   * Finds the map index of the area that starts at `freeme`. Throws KernelBug, changing
   * nothing, when no live area starts there (the kernel's BUG_ONs in pcpu_free_area()).
   * Needs pcpu_lock.
   */
  pcpu_find_area(chunk: PcpuChunk, freeme: number): number {
    const map = chunk.map;
    const used = chunk.map_used;
    // offsets rise with the index, so the entry that starts at freeme is the same one whichever
    // way it is looked for: from the end when that is nearer (the kernel's walk, from 0, comes
    // below when it is not there, for the kernel's messages)
    let end = chunk.map_end;
    if (end < 0) {
      end = 0;
      for (let k = 0; k < used; k++) end += Math.abs(map[k]!);
      chunk.map_end = end;
    }
    if (used > 0 && end - freeme < freeme - chunk.scan_off) {
      let k = used - 1;
      let m = map[k]!;
      let at = end - (m < 0 ? -m : m);
      while (at > freeme && k > 0) {
        m = map[--k]!;
        at -= m < 0 ? -m : m;
      }
      if (at === freeme && k > 0 && map[k]! < 0) return k;
    }
    // from 0, the walk would reach entry scan_i (all before it start below scan_off) as it is
    const skip = freeme >= chunk.scan_off;
    let i = skip ? chunk.scan_i : 0;
    let off = skip ? chunk.scan_off : 0;
    // "for (i = 0, off = 0; i < map_used; off += abs(map[i++]))", with abs() as a branch
    for (; i < used && off < freeme; i++) {
      const m = map[i]!;
      off += m < 0 ? -m : m;
    }
    if (off === freeme && i > 0 && i < used && map[i]! < 0) return i; // the common case, before any message is made
    const where = `chunk ${chunkName(chunk)} offset ${freeme}`;
    if (off !== freeme || i === used)
      throw new KernelBug(
        'BAD_FREE',
        `free_percpu: ${where} is not the start of an area (BUG_ON(off != freeme))`,
        'off != freeme',
      );
    if (map[i]! > 0)
      throw new KernelBug(
        'DOUBLE_FREE',
        `free_percpu: ${where} is already free (BUG_ON(chunk->map[i] > 0))`,
        'chunk->map[i] > 0',
      );
    if (i === 0 && (chunk === this.pcpu_first_chunk || chunk === this.pcpu_reserved_chunk))
      throw new KernelBug('BAD_FREE', `free_percpu: ${where} is the static area of the first chunk`, 'static area');
    return i;
  }

  /**
   * pcpu_free_area(): marks the area at `freeme` free and merges it with free neighbours.
   * Only the map changes; nothing is depopulated. Needs pcpu_lock.
   */
  pcpu_free_area(chunk: PcpuChunk, freeme: number): void {
    this.lockdep_assert_held?.('pcpu_lock', 'pcpu_free_area');
    if (chunk.destroyed) this.pcpu_chunk_check_alive(chunk, 'pcpu_free_area');
    this.WRITE('map', chunk, 'pcpu_free_area');
    const oslot = this.pcpu_chunk_slot(chunk);
    const map = chunk.map;
    let i = this.pcpu_find_area(chunk, freeme);
    if (i < chunk.scan_i) {
      // the first entry free from now on; entry i - 1 is in use, so nothing merges before it
      chunk.scan_i = i;
      chunk.scan_off = freeme;
    }

    map[i] = -map[i]!;
    chunk.free_size += map[i]!;
    pcpu_forget_failures(chunk);

    if (i > 0 && map[i - 1]! >= 0) {
      map[i - 1]! += map[i]!;
      chunk.map_used--;
      map.copyWithin(i, i + 1, chunk.map_used + 1);
      i--;
    }
    if (i + 1 < chunk.map_used && map[i + 1]! >= 0) {
      map[i]! += map[i + 1]!;
      chunk.map_used--;
      map.copyWithin(i + 1, i + 2, chunk.map_used + 1);
    }

    chunk.contig_hint = Math.max(map[i]!, chunk.contig_hint);
    this.pcpu_chunk_relocate(chunk, oslot);
  }

  // ------------------------------------------------------------ chunks

  /**
   * pcpu_alloc_chunk(): a chunk struct and its first map, one free area the size of a unit.
   * Fails before slab is online. No lock needed. Returns the chunk (not yet numbered), or null.
   */
  pcpu_alloc_chunk(): PcpuChunk | null {
    const map = this.pcpu_mem_alloc(PCPU_DFL_MAP_ALLOC);
    if (!map) return null;
    const chunk = new PcpuChunk(0, map, this.pcpu_unit_pages);
    this.WRITE('map', chunk, 'pcpu_alloc_chunk');
    chunk.map[chunk.map_used++] = this.pcpu_unit_size;
    chunk.free_size = this.pcpu_unit_size;
    chunk.contig_hint = this.pcpu_unit_size;
    return chunk;
  }

  /** pcpu_free_chunk(): frees the chunk struct and its map. Needs pcpu_alloc_mutex (the chunk is unlinked). */
  pcpu_free_chunk(chunk: PcpuChunk): void {
    this.kcsan?.destroyed(chunk, 'pcpu_free_chunk');
    this.pcpu_mem_free(chunk.map, chunk.early_map);
  }

  /** Gives a chunk the backend just built its number and makes it findable. Needs pcpu_alloc_mutex. Returns the chunk. */
  pcpu_register_chunk(chunk: PcpuChunk): PcpuChunk {
    chunk.id = this.next_chunk_id++;
    this.WRITE('index', chunk, 'pcpu_register_chunk');
    this.chunks.set(chunk.id, chunk);
    this.stats.nr_chunks++;
    this.stats.nr_max_chunks = Math.max(this.stats.nr_max_chunks, this.stats.nr_chunks);
    return chunk;
  }

  /** Forgets a destroyed chunk. Needs pcpu_alloc_mutex. */
  pcpu_unregister_chunk(chunk: PcpuChunk): void {
    this.chunks.delete(chunk.id);
    this.stats.nr_chunks--;
  }

  /** pcpu_chunk_addr(): the address of page `page_idx` of `cpu`'s unit in a chunk. No lock. */
  pcpu_chunk_addr(chunk: PcpuChunk, cpu: number, page_idx: number): number {
    return chunk.base_addr + this.pcpu_unit_offsets[cpu]! + page_idx * PAGE_SIZE;
  }

  // ------------------------------------------------------------ lookup

  /** Is this unit-0 address in the first chunk? No lock: the first chunk never moves. */
  pcpu_addr_in_first_chunk(addr: number): boolean {
    const first_start = this.pcpu_first_chunk!.base_addr;
    return addr >= first_start && addr < first_start + this.pcpu_unit_size;
  }

  /** Is this unit-0 address in the static + reserved part of the first chunk? No lock. */
  pcpu_addr_in_reserved_chunk(addr: number): boolean {
    const first_start = this.pcpu_first_chunk!.base_addr;
    return addr >= first_start && addr < first_start + this.pcpu_reserved_chunk_limit;
  }

  /**
   * pcpu_chunk_addr_search(): the chunk of a unit-0 address. The first chunk and its reserved
   * part are recognised by range; any other chunk through the page that backs `cpu`'s copy
   * (the page -> chunk link set at population). Needs pcpu_lock. Throws KernelBug when the
   * address belongs to no chunk.
   */
  pcpu_chunk_addr_search(addr: number, cpu: number): PcpuChunk {
    if (this.pcpu_addr_in_first_chunk(addr)) {
      if (this.pcpu_reserved_chunk && this.pcpu_addr_in_reserved_chunk(addr)) return this.pcpu_reserved_chunk;
      return this.pcpu_first_chunk!;
    }
    const pfn = this.backend.pcpu_addr_to_pfn(addr + this.pcpu_unit_offsets[cpu]!);
    const chunk = pfn >= 0 ? this.chunks.get(this.machine.mem.pageChunk(pfn)) : undefined;
    if (!chunk)
      throw new KernelBug('BAD_FREE', `free_percpu: 0x${addr.toString(16)} is in no percpu chunk`, 'no chunk');
    this.READ('index', chunk, 'pcpu_chunk_addr_search');
    this.READ('page', chunk, 'pcpu_chunk_addr_search', Math.floor((addr - chunk.base_addr) / PAGE_SIZE));
    return chunk;
  }

  // ------------------------------------------------------------ pointers

  /** __addr_to_pcpu_ptr(): a unit-0 address as the percpu pointer callers hold. No lock. */
  __addr_to_pcpu_ptr(addr: number): number {
    return addr - this.pcpu_base_addr + this.image.per_cpu_start;
  }

  /** __pcpu_ptr_to_addr(): a percpu pointer back to its unit-0 address. No lock. */
  __pcpu_ptr_to_addr(ptr: number): number {
    return ptr + this.pcpu_base_addr - this.image.per_cpu_start;
  }

  /** per_cpu_ptr(): the address of `cpu`'s copy. No lock. */
  per_cpu_ptr(ptr: number, cpu: number): number {
    return ptr + this.__per_cpu_offset[cpu]!;
  }

  /**
   * per_cpu_ptr_to_phys(): the physical address behind a per-CPU address: __pa() for the
   * embedded first chunk, the page table otherwise. No lock; the caller keeps `addr` alive.
   * Returns -1 when nothing backs it.
   */
  per_cpu_ptr_to_phys(addr: number): number {
    const base = this.__addr_to_pcpu_ptr(this.pcpu_base_addr);
    let in_first_chunk = false;
    const first_low = this.pcpu_chunk_addr(this.pcpu_first_chunk!, this.pcpu_low_unit_cpu, 0);
    const first_high = this.pcpu_chunk_addr(this.pcpu_first_chunk!, this.pcpu_high_unit_cpu, this.pcpu_unit_pages);
    if (addr >= first_low && addr < first_high) {
      for (let cpu = 0; cpu < this.nr_cpu_ids; cpu++) {
        const start = this.per_cpu_ptr(base, cpu);
        if (addr >= start && addr < start + this.pcpu_unit_size) {
          in_first_chunk = true;
          break;
        }
      }
    }
    const vm = this.machine.vm;
    if (in_first_chunk && !vm.isVmallocAddr(addr)) return this.machine.mem.pa(addr);
    const pfn = in_first_chunk ? vm.vmallocToPfn(addr) : this.backend.pcpu_addr_to_pfn(addr);
    return pfn < 0 ? -1 : pfn * PAGE_SIZE + (addr & (PAGE_SIZE - 1));
  }

  // ------------------------------------------------------------ alloc / free

  /**
   * pcpu_alloc(): `size` bytes aligned to `align` in every unit, zeroed. Reserved requests
   * are served only by the reserved chunk when there is one. Takes pcpu_alloc_mutex for the
   * whole call and pcpu_lock around map work; sleeps to extend maps, create chunks and
   * populate. Returns the percpu pointer and its place, or ptr 0 with the kernel's reason.
   */
  pcpu_alloc(size: number, align: number, reserved: boolean): KTask<AllocResult> {
    return this.path('pcpu_alloc', this.__pcpu_alloc(size, align, reserved));
  }

  /** pcpu_alloc()'s steps, before any lock bug. */
  private *__pcpu_alloc(size: number, align: number, reserved: boolean): KTask<AllocResult> {
    // size and align are size_t: anything that is not a whole number above zero is illegal too.
    // 2.6.36 takes any alignment up to PAGE_SIZE and rounds with ALIGN()'s mask, so one that is
    // not a power of two clears the bits of align - 1 (align 0 would underflow the mask).
    if (
      !(Number.isInteger(size) && size > 0) ||
      size > PCPU_MIN_UNIT_SIZE ||
      align > PAGE_SIZE ||
      !(Number.isInteger(align) && align > 0)
    ) {
      const error = `illegal size (${size}) or align (${align}) for percpu allocation`;
      this.tracepoint?.({ op: 'walk', size, align, reserved, outcome: 'fail', reason: error });
      this.WARN(error);
      this.stats.nr_failed++;
      return { ptr: 0, chunk: null, off: -1, error };
    }

    yield MUTEX_LOCK;
    yield SPIN_LOCK;

    let chunk: PcpuChunk | null = null;
    let off = -1;
    let new_alloc: number;

    const misrouted =
      !reserved &&
      this.mutant('dynamic-from-reserved') &&
      this.pcpu_reserved_chunk !== null &&
      size <= this.pcpu_reserved_chunk.contig_hint;
    if ((reserved || misrouted) && this.pcpu_reserved_chunk) {
      // reserved requests never fall back to the dynamic chunks
      chunk = this.pcpu_reserved_chunk;
      if (this.kcsan_delay) yield watchpoint('pcpu_alloc');
      this.READ('map', chunk, 'pcpu_alloc');
      const walk = { op: 'walk', size, align, reserved } as const;
      if (size > chunk.contig_hint) {
        this.tracepoint?.({ ...walk, outcome: 'fail', reason: 'alloc from reserved chunk failed' });
        return yield* this.pcpu_alloc_fail(size, align, 'alloc from reserved chunk failed', true);
      }
      while ((new_alloc = this.pcpu_need_to_extend(chunk))) {
        this.tracepoint?.({ ...walk, outcome: 'extend', chunk: chunk.id, to: new_alloc });
        yield SPIN_UNLOCK;
        if ((yield* this.pcpu_extend_area_map(chunk, new_alloc)) < 0) {
          this.tracepoint?.({ op: 'alloc-failed', reason: 'failed to extend area map of reserved chunk' });
          return yield* this.pcpu_alloc_fail(size, align, 'failed to extend area map of reserved chunk', false);
        }
        yield SPIN_LOCK;
      }
      off = this.pcpu_alloc_area(chunk, size, align);
      if (off < 0) {
        this.tracepoint?.({ ...walk, outcome: 'fail', reason: 'alloc from reserved chunk failed' });
        return yield* this.pcpu_alloc_fail(size, align, 'alloc from reserved chunk failed', true);
      }
      this.tracepoint?.({ ...walk, outcome: 'area', chunk: chunk.id, off });
    } else {
      restart: for (;;) {
        const first = this.pcpu_size_to_slot(size) + (this.mutant('walk-slot-too-high') ? 1 : 0);
        for (let slot = first; slot < this.pcpu_nr_slots; slot++) {
          const head = this.pcpu_slot[slot]!;
          this.READ('slots', null, 'pcpu_alloc');
          // the next entry is saved first: a failed search may move the chunk to slot 0
          for (let pos = head.next, n = pos.next; pos !== head; pos = n, n = pos.next) {
            const c = pos as PcpuChunk;
            if (this.kcsan_delay) yield watchpoint('pcpu_alloc');
            this.READ('map', c, 'pcpu_alloc');
            if (size > c.contig_hint) continue;

            new_alloc = this.pcpu_need_to_extend(c);
            if (new_alloc) {
              this.tracepoint?.({ op: 'walk', size, align, reserved, outcome: 'extend', chunk: c.id, to: new_alloc });
              yield SPIN_UNLOCK;
              const partial = this.mutant('destroy-in-use'); // the 2016 partial mutex hold
              if (partial) yield MUTEX_UNLOCK;
              const rc = yield* this.pcpu_extend_area_map(c, new_alloc);
              if (partial) yield MUTEX_LOCK;
              if (rc < 0) {
                this.tracepoint?.({ op: 'alloc-failed', reason: 'failed to extend area map' });
                return yield* this.pcpu_alloc_fail(size, align, 'failed to extend area map', false);
              }
              yield SPIN_LOCK;
              // pcpu_lock was dropped: the slot lists may have changed
              if (!this.mutant('extend-stale-walk')) continue restart;
              n = c.next; // the 2009 bug: carry on from wherever the chunk is now
              if (this.pcpu_chunk_slot(c) !== slot)
                throw new KernelBug(
                  'LIST_CORRUPTION',
                  `pcpu_alloc: chunk ${chunkName(c)} moved to slot ${this.pcpu_chunk_slot(c)} while the walk of slot ${slot} had pcpu_lock dropped`,
                  'list corruption',
                );
            }

            off = this.pcpu_alloc_area(c, size, align);
            if (off >= 0) {
              this.tracepoint?.({ op: 'walk', size, align, reserved, outcome: 'area', chunk: c.id, off });
              chunk = c;
              break restart;
            }
          }
        }

        // no space left anywhere: create a new chunk
        this.tracepoint?.({ op: 'walk', size, align, reserved, outcome: 'create' });
        yield SPIN_UNLOCK;
        const fresh = yield* this.backend.pcpu_create_chunk();
        if (!fresh) {
          this.tracepoint?.({ op: 'alloc-failed', reason: 'failed to allocate new chunk' });
          return yield* this.pcpu_alloc_fail(size, align, 'failed to allocate new chunk', false);
        }
        yield SPIN_LOCK;
        if (this.kcsan_delay) yield watchpoint('pcpu_alloc');
        this.pcpu_chunk_relocate(fresh, -1);
        this.tracepoint?.({ op: 'created', chunk: fresh.id });
      }
    }

    // area_found: populate, map and clear the area with only the mutex held
    chunk!.populating.push(off);
    yield SPIN_UNLOCK;
    const before = this.tracepoint ? chunk!.populated.slice() : null;
    const populated = yield* this.backend.pcpu_populate_chunk(chunk!, off, size);
    const busy = chunk!.populating;
    busy[busy.lastIndexOf(off)] = busy[busy.length - 1]!;
    busy.pop();
    if (populated < 0) {
      yield SPIN_LOCK;
      if (!this.mutant('populate-fail-keeps-area')) this.pcpu_free_area(chunk!, off);
      this.tracepoint?.({ op: 'alloc-failed', reason: 'failed to populate' });
      return yield* this.pcpu_alloc_fail(size, align, 'failed to populate', true);
    }
    if (before) {
      const pages: number[] = [];
      chunk!.populated.forEach((p, i) => p && !before[i] && pages.push(i));
      this.tracepoint!({ op: 'populated', chunk: chunk!.id, off, size, pages });
    }
    yield MUTEX_UNLOCK;

    const s = this.stats;
    s.nr_alloc++;
    s.nr_cur_alloc++;
    s.nr_max_alloc = Math.max(s.nr_max_alloc, s.nr_cur_alloc);
    if (s.min_alloc_size === 0 || size < s.min_alloc_size) s.min_alloc_size = size;
    if (size > s.max_alloc_size) s.max_alloc_size = size;
    return { ptr: this.__addr_to_pcpu_ptr(chunk!.base_addr + off), chunk, off, error: null };
  }

  /** The failure exits of pcpu_alloc(): unlock what is held and print the warning. */
  private *pcpu_alloc_fail(size: number, align: number, err: string, spin_held: boolean): KTask<AllocResult> {
    if (spin_held) yield SPIN_UNLOCK;
    yield MUTEX_UNLOCK;
    this.stats.nr_failed++;
    if (this.warn_limit) {
      this.printk(`PERCPU: allocation failed, size=${size} align=${align}, ${err}`);
      if (!--this.warn_limit) this.printk('PERCPU: limit reached, disable warning');
    }
    return { ptr: 0, chunk: null, off: -1, error: err };
  }

  /** __alloc_percpu(): a dynamic percpu area. See pcpu_alloc(). */
  __alloc_percpu(size: number, align: number): KTask<AllocResult> {
    return this.pcpu_alloc(size, align, false);
  }

  /** __alloc_reserved_percpu(): an area from the reserved chunk (module static percpu). */
  __alloc_reserved_percpu(size: number, align: number): KTask<AllocResult> {
    return this.pcpu_alloc(size, align, true);
  }

  /**
   * free_percpu(): frees an area. Takes only pcpu_lock, so it may run in atomic context.
   * When this empties a chunk and another empty chunk exists, it schedules reclaim (still
   * under pcpu_lock, as 2.6.36 does). `cpu` is the CPU it runs on: its unit's page names the
   * chunk. Returns the chunk the area was in, or null for a NULL pointer.
   */
  free_percpu(ptr: number, cpu = 0): KTask<PcpuChunk | null> {
    return this.path('free_percpu', this.__free_percpu(ptr, cpu));
  }

  /** free_percpu()'s steps, before any lock bug. */
  private *__free_percpu(ptr: number, cpu: number): KTask<PcpuChunk | null> {
    if (!ptr) return null;
    const addr = this.__pcpu_ptr_to_addr(ptr);

    const locked = !this.mutant('free-without-lock');
    if (locked) yield SPIN_LOCK;
    if (this.kcsan_delay) yield watchpoint('free_percpu');
    const chunk = this.pcpu_chunk_addr_search(addr, cpu);
    const off = addr - chunk.base_addr;
    if (this.kcsan_delay) yield watchpoint('free_percpu');
    this.pcpu_free_area(chunk, off);
    this.tracepoint?.({ op: 'area-freed', chunk: chunk.id, off });
    this.stats.nr_dealloc++;
    this.stats.nr_cur_alloc--;

    if (this.kcsan_delay) yield watchpoint('free_percpu');
    this.READ('map', chunk, 'free_percpu');
    let reclaim = false;
    if (chunk.free_size === this.pcpu_unit_size) {
      const head = this.pcpu_slot[this.pcpu_nr_slots - 1]!;
      this.READ('slots', null, 'free_percpu');
      for (let pos = head.next; pos !== head; pos = pos.next)
        if (pos !== chunk) {
          reclaim = true;
          break;
        }
    }
    // traced in the step that read the map, so that no other step can come between them
    this.tracepoint?.({ op: 'freed', chunk: chunk.id, off, reclaim });
    if (reclaim) yield SCHEDULE_RECLAIM;
    if (locked) yield SPIN_UNLOCK;
    return chunk;
  }

  /**
   * pcpu_reclaim(): the workqueue function that destroys all fully free chunks but the first
   * on the last slot. Unlinks under both locks, then depopulates and destroys with the mutex
   * still held (percpu-vm's scratch page array is shared). Returns the destroyed chunk numbers.
   */
  pcpu_reclaim(): KTask<number[]> {
    return this.path('pcpu_reclaim', this.__pcpu_reclaim());
  }

  /** pcpu_reclaim()'s steps, before any lock bug. */
  private *__pcpu_reclaim(): KTask<number[]> {
    const destroyed = yield* this.pcpu_destroy_empty(true);
    this.stats.nr_reclaimed += destroyed.length;
    return destroyed;
  }

  /**
   * Machine shutdown (not a kernel path): like pcpu_reclaim() but spares no empty chunk, so
   * that every page the allocator took goes back. Returns the destroyed chunk numbers.
   */
  *pcpu_teardown(): KTask<number[]> {
    return yield* this.pcpu_destroy_empty(false);
  }

  /** The body of reclaim: unlink the empty chunks (all, or all but the first) and destroy them. */
  private *pcpu_destroy_empty(spare_first: boolean): KTask<number[]> {
    const head = this.pcpu_slot[this.pcpu_nr_slots - 1]!;
    const todo = new ListHead();

    yield MUTEX_LOCK;
    yield SPIN_LOCK;
    this.READ('slots', null, 'pcpu_reclaim');
    for (let pos = head.next, n = pos.next; pos !== head; pos = n, n = pos.next) {
      const chunk = pos as PcpuChunk;
      if (chunk.immutable) this.WARN('at mm/percpu.c pcpu_reclaim(): WARN_ON(chunk->immutable)');
      if (spare_first && chunk === head.next) continue; // spare the first one
      if (this.kcsan_delay) yield watchpoint('pcpu_reclaim');
      this.WRITE('slots', null, 'pcpu_reclaim');
      list_move(chunk, todo);
      chunk.linked = false;
    }
    this.tracepoint?.({
      op: 'reclaim',
      destroyed: list_entries<PcpuChunk>(todo).map((c) => c.id),
      spareFirst: spare_first,
    });
    yield SPIN_UNLOCK;
    const early_unlock = spare_first && this.mutant('reclaim-drops-mutex'); // the 2009 reclaim locking bug
    if (early_unlock) yield MUTEX_UNLOCK;

    const destroyed: number[] = [];
    for (const chunk of list_entries<PcpuChunk>(todo)) {
      if (this.tracepoint) {
        const pages: number[] = [];
        chunk.populated.forEach((p, i) => p && pages.push(i));
        this.tracepoint({ op: 'destroyed', chunk: chunk.id, pages });
      }
      yield* this.backend.pcpu_depopulate_chunk(chunk, 0, this.pcpu_unit_size);
      yield* this.backend.pcpu_destroy_chunk(chunk);
      destroyed.push(chunk.id);
    }
    if (!early_unlock) yield MUTEX_UNLOCK;
    return destroyed;
  }

  // ------------------------------------------------------------ setup

  /**
   * pcpu_setup_first_chunk(): checks the first chunk's shape, builds the unit and group
   * tables and the slot lists, and links the first chunk in. The static and reserved areas
   * form one chunk and the dynamic area another; both map the same memory and start on the
   * early maps. Boot only. Returns 0; a failed check throws KernelBug PCPU_SETUP_BUG_ON.
   */
  pcpu_setup_first_chunk(ai: PcpuAllocInfo, base_addr: number): number {
    let dyn_size = ai.dyn_size;
    const size_sum = ai.static_size + ai.reserved_size + dyn_size;

    const PCPU_SETUP_BUG_ON = (cond: boolean, check: string): void => {
      if (!cond) return;
      this.printk(`PERCPU: failed to initialize, ${check}`);
      this.printk(`PERCPU: cpu_possible_mask=0-${this.nr_cpu_ids - 1}`);
      try {
        for (const line of pcpu_dump_alloc_info(ai, this.nr_cpu_ids)) this.printk(line);
      } catch {
        this.printk('PERCPU: (the alloc info is too broken to dump)');
      }
      throw new KernelBug('PCPU_SETUP_BUG_ON', `PERCPU: failed to initialize, ${check}`, check);
    };

    if (this.is_setup) throw new KernelBug('BAD_STATE', 'pcpu_setup_first_chunk: the first chunk is already set up');
    PCPU_SETUP_BUG_ON(ai.nr_groups <= 0, 'ai->nr_groups <= 0');
    PCPU_SETUP_BUG_ON(!ai.static_size, '!ai->static_size');
    PCPU_SETUP_BUG_ON(this.image.per_cpu_start % PAGE_SIZE !== 0, '(unsigned long)__per_cpu_start & ~PAGE_MASK');
    PCPU_SETUP_BUG_ON(!base_addr, '!base_addr');
    PCPU_SETUP_BUG_ON(base_addr % PAGE_SIZE !== 0, '(unsigned long)base_addr & ~PAGE_MASK');
    PCPU_SETUP_BUG_ON(ai.unit_size < size_sum, 'ai->unit_size < size_sum');
    PCPU_SETUP_BUG_ON(ai.unit_size % PAGE_SIZE !== 0, 'ai->unit_size & ~PAGE_MASK');
    PCPU_SETUP_BUG_ON(ai.unit_size < PCPU_MIN_UNIT_SIZE, 'ai->unit_size < PCPU_MIN_UNIT_SIZE');
    PCPU_SETUP_BUG_ON(ai.dyn_size < PERCPU_DYNAMIC_EARLY_SIZE, 'ai->dyn_size < PERCPU_DYNAMIC_EARLY_SIZE');
    PCPU_SETUP_BUG_ON(this.backend.pcpu_verify_alloc_info(ai) < 0, 'pcpu_verify_alloc_info(ai) < 0');

    const group_offsets: number[] = [];
    const group_sizes: number[] = [];
    const unit_map = new Array<number>(this.nr_cpu_ids).fill(-1);
    const unit_off = new Array<number>(this.nr_cpu_ids).fill(0);
    let low = NR_CPUS;
    let high = NR_CPUS;
    let unit = 0;
    for (let group = 0; group < ai.nr_groups; group++) {
      const gi = ai.groups[group]!;
      group_offsets[group] = gi.base_offset;
      group_sizes[group] = gi.nr_units * ai.unit_size;
      for (let i = 0; i < gi.nr_units; i++) {
        const cpu = gi.cpu_map[i]!;
        if (cpu === NR_CPUS) continue;
        PCPU_SETUP_BUG_ON(cpu >= this.nr_cpu_ids, 'cpu > nr_cpu_ids');
        PCPU_SETUP_BUG_ON(unit_map[cpu] !== -1, 'unit_map[cpu] != UINT_MAX');
        unit_map[cpu] = unit + i;
        unit_off[cpu] = gi.base_offset + i * ai.unit_size;
        if (low === NR_CPUS || unit_off[cpu]! < unit_off[low]!) low = cpu;
        if (high === NR_CPUS || unit_off[cpu]! > unit_off[high]!) high = cpu;
      }
      unit += gi.nr_units;
    }
    for (let cpu = 0; cpu < this.nr_cpu_ids; cpu++)
      PCPU_SETUP_BUG_ON(unit_map[cpu] === -1, 'unit_map[cpu] == UINT_MAX');

    for (const line of pcpu_dump_alloc_info(ai, this.nr_cpu_ids)) this.printk(line);

    this.pcpu_nr_units = unit;
    this.pcpu_low_unit_cpu = low;
    this.pcpu_high_unit_cpu = high;
    this.pcpu_nr_groups = ai.nr_groups;
    this.pcpu_group_offsets = group_offsets;
    this.pcpu_group_sizes = group_sizes;
    this.pcpu_unit_map = unit_map;
    this.pcpu_unit_offsets = unit_off;
    this.pcpu_unit_pages = ai.unit_size / PAGE_SIZE;
    this.pcpu_unit_size = this.pcpu_unit_pages * PAGE_SIZE;
    this.pcpu_atom_size = ai.atom_size;
    this.pcpu_static_size = ai.static_size;
    this.pcpu_reserved_size = ai.reserved_size;
    this.pcpu_dyn_size = ai.dyn_size;
    this.pcpu_alloc_size = ai.alloc_size;

    // one extra slot at the end for fully free chunks
    this.pcpu_nr_slots = this.__pcpu_size_to_slot(this.pcpu_unit_size) + 2;
    this.pcpu_slot = Array.from({ length: this.pcpu_nr_slots }, () => new ListHead());

    // the static chunk: static + reserved, or static + dynamic when nothing is reserved
    const schunk = new PcpuChunk(
      ai.reserved_size ? RESERVED_CHUNK_ID : 0,
      new Int32Array(PERCPU_DYNAMIC_EARLY_SLOTS),
      this.pcpu_unit_pages,
    );
    schunk.base_addr = base_addr;
    schunk.early_map = true;
    schunk.immutable = true;
    schunk.populated.fill(1);
    if (ai.reserved_size) {
      schunk.free_size = ai.reserved_size;
      this.pcpu_reserved_chunk = schunk;
      this.pcpu_reserved_chunk_limit = ai.static_size + ai.reserved_size;
    } else {
      schunk.free_size = dyn_size;
      dyn_size = 0; // the static chunk covers the dynamic area
    }
    schunk.contig_hint = schunk.free_size;
    schunk.map[schunk.map_used++] = -ai.static_size;
    if (schunk.free_size) schunk.map[schunk.map_used++] = schunk.free_size;

    let dchunk: PcpuChunk | null = null;
    if (dyn_size) {
      dchunk = new PcpuChunk(0, new Int32Array(PERCPU_DYNAMIC_EARLY_SLOTS), this.pcpu_unit_pages);
      dchunk.base_addr = base_addr;
      dchunk.early_map = true;
      dchunk.immutable = true;
      dchunk.populated.fill(1);
      dchunk.contig_hint = dchunk.free_size = dyn_size;
      dchunk.map[dchunk.map_used++] = -this.pcpu_reserved_chunk_limit;
      dchunk.map[dchunk.map_used++] = dchunk.free_size;
    }

    this.pcpu_first_chunk = dchunk ?? schunk;
    this.chunks.set(0, this.pcpu_first_chunk);
    this.stats.nr_chunks = 1;
    this.stats.nr_max_chunks = 1;
    this.pcpu_chunk_relocate(this.pcpu_first_chunk, -1);
    this.pcpu_base_addr = base_addr;
    return 0;
  }

  /** setup_per_cpu_areas()'s tail: __per_cpu_offset[cpu] = delta + unit offset. */
  pcpu_setup_offsets(): void {
    const delta = this.pcpu_base_addr - this.image.per_cpu_start;
    this.__per_cpu_offset = this.pcpu_unit_offsets.map((o) => delta + o);
  }

  /**
   * percpu_init_late(): slab is up; the first and reserved chunks move from their
   * __initdata maps to allocated ones, under pcpu_lock. Placement does not change.
   * Returns when both maps are swapped.
   */
  percpu_init_late(): KTask<void> {
    return this.path('percpu_init_late', this.__percpu_init_late());
  }

  /** percpu_init_late()'s steps, before any lock bug. */
  private *__percpu_init_late(): KTask<void> {
    if (!this.slab_available)
      throw new KernelBug('BAD_STATE', 'percpu_init_late: slab is not available yet (BUG_ON(!map))', '!map');
    if (this.late_init_done) throw new KernelBug('BAD_STATE', 'percpu_init_late: already done');
    const targets = [this.pcpu_first_chunk, this.pcpu_reserved_chunk];
    for (const chunk of targets) {
      if (!chunk) break;
      // an early map is never extended in place, so it always has the early size
      let map: Int32Array | null = this.pcpu_mem_alloc(PERCPU_DYNAMIC_EARLY_SLOTS)!;
      yield SPIN_LOCK;
      if (this.kcsan_delay) yield watchpoint('percpu_init_late');
      this.READ('map', chunk, 'percpu_init_late');
      // a map extended after slab came online is already allocated
      if (chunk.early_map) {
        this.WRITE('map', chunk, 'percpu_init_late');
        map.set(chunk.map);
        chunk.map = map;
        chunk.early_map = false;
        map = null;
      }
      yield SPIN_UNLOCK;
      this.pcpu_mem_free(map, false);
    }
    this.late_init_done = true;
    this.tracepoint?.({ op: 'init-late', early: targets.filter((c) => c?.early_map).map((c) => c!.id) });
  }

  /** Marks the end of early boot: kmalloc works from now on. */
  slab_is_online(): void {
    if (this.slab_available) throw new KernelBug('BAD_STATE', 'slab is already online');
    this.slab_available = true;
  }

  /** The chunks on each slot list, in list order (a copy, for checkers and reports). */
  slotLists(): PcpuChunk[][] {
    return this.pcpu_slot.map((h) => list_entries<PcpuChunk>(h));
  }
}

/** The map changed: no failed search is known to fail again. */
function pcpu_forget_failures(chunk: PcpuChunk): void {
  if (!chunk.fail_known) return;
  chunk.fail_size.fill(PCPU_NO_FAIL);
  chunk.fail_known = false;
}

/** How reports name a chunk: "reserved", or its number. */
export function chunkName(chunk: PcpuChunk): string {
  return chunk.id === RESERVED_CHUNK_ID ? 'reserved' : String(chunk.id);
}
