/**
 * The isolation checker, in two halves that share the shadow region of src/mem:
 *
 *  - the tracker (main thread) follows the actor: when an allocation is served it checks that
 *    the new area reads zero in every unit and tags every CPU's copy with a tag of its own
 *    (the allocation and the CPU); when the caller frees it, the tags turn negative;
 *  - the access check (any thread) looks at each read and write a CPU makes through the
 *    per-CPU API: the page must be mapped, every byte must belong to one live allocation, and
 *    it must be the copy of the CPU the access named (its own for this_cpu ops, the one given
 *    to per_cpu_ptr for remote ones). It also compares the physical address the data path
 *    used with its own page-table walk, so a stale or wrong translation is caught on any width.
 *
 * Neither half asks the allocator anything after boot: the copies are found with the
 * checker's own walk from a snapshot of __per_cpu_offset[] that the tracker first validates
 * against the machine's configuration (groups, units, nodes).
 */
import type { ActorEvent } from '../sim/events.ts';
import { ReplyFollower } from './replies.ts';
import type { Percpu } from '../kernel/percpu.ts';
import { H_SHADOW_BUSY, H_SHADOW_EPOCH, PAGE_OFFSET, PAGE_SIZE, VMALLOC_START, readHeader } from '../mem/layout.ts';
import { PageWalk } from './walk.ts';

/** How many CPUs a tag can name: tag = allocation * TAG_CPUS + cpu. */
export const TAG_CPUS = 1024;
/** The allocation number of the kernel image's static percpu section. */
export const TAG_STATIC = 1;
/** An access that may touch any CPU's copy (a legacy "remote" with no CPU named). */
export const ANY_CPU = -1;

export const tagOf = (alloc: number, cpu: number): number => alloc * TAG_CPUS + cpu;
export const tagAlloc = (tag: number): number => Math.floor(Math.abs(tag) / TAG_CPUS);
export const tagCpu = (tag: number): number => Math.abs(tag) % TAG_CPUS;

export type IsolationKind =
  | 'foreign-unit' // another CPU's copy than the access named
  | 'use-after-free'
  | 'out-of-bounds'
  | 'unmapped'
  | 'nonzero-new-area'
  | 'stale-translation' // the data path used another frame than the page table names
  | 'unit-layout'; // __per_cpu_offset[] disagrees with the machine's configuration

/** What the access check finds, as plain data (it crosses threads). */
export interface AccessFault {
  kind: IsolationKind;
  cpu: number;
  /** what the CPU was doing */
  access: 'read' | 'write' | 'alloc';
  addr: number;
  len: number;
  /** the shadow tag at the offending byte (negative: freed allocation) */
  tag: number;
  /** the CPU whose copy the byte is (-1 when unknown) */
  unitCpu: number;
  detail: string;
}

export interface AllocationInfo {
  id: number;
  ptr: number;
  size: number;
  chunk: number | 'reserved';
  offset: number;
  /** the CPU that allocated it */
  cpu: number;
  live: boolean;
  /** the tick its free was asked for, once freed */
  freedTick?: number;
}

/** Whose the bytes of a new area were before it: the allocation that last held them, if any. */
export interface PreviousOwner {
  /** the allocation, as it was when the new area was handed out (null: no allocation ever held them) */
  allocation: AllocationInfo | null;
  /** whose copy the bytes were */
  unitCpu: number;
  /** the kernel image's static section held them */
  static?: boolean;
}

export interface IsolationViolation {
  checker: 'isolation';
  kind: IsolationKind;
  /** the seed of the run that found it */
  seed: number;
  cpu: number;
  addr: string;
  unitCpu: number;
  allocation: AllocationInfo | null;
  /** for a new area that is not zero: whose its bytes were before */
  previous?: PreviousOwner;
  message: string;
}

const hex = (a: number): string => a.toString(16).padStart(16, '0');

/**
 * How far either side of an access the tag cache extends its validated run of one copy's
 * bytes: far enough that a loop over a page-sized area revalidates a few times per pass, short
 * enough that a miss (after any tag change anywhere) costs a few hundred loads at most.
 */
const RUN_SCAN = 512;

/** The longest byte range whose contents check copies it into words first (longer ones take a view of their own). */
const SCRATCH_MAX = 1 << 16;

/**
 * The per-access check. Pure over the shared buffer; usable in any thread.
 *
 * Every access is checked against the current shadow and page table, but a check need not
 * redo what nothing has changed since the last one: the checker keeps, as sanitizers keep
 * shadow lookups cheap,
 *  - a translation cache: the page last walked and the page-table word that mapped it; a hit
 *    re-reads that word (its own walk, one load), so an unmap or a remap of the same address
 *    to another frame is seen at once, whatever the page-table generation says;
 *  - a tag cache: a run of bytes of that page that all carry one live copy's tag, and the
 *    shadow epoch (H_SHADOW_EPOCH, bumped after every tag change) it was validated at; a hit
 *    needs the epoch unchanged, the translation still good and the access inside the run.
 * Anything else takes the full check, which refills both. A stale entry can only cause a miss.
 */
export class AccessChecker {
  private readonly tags: Int32Array;
  readonly walk: PageWalk;
  readonly enabled: boolean;
  private readonly header: Int32Array;
  private readonly pt: Int32Array;
  private readonly vmallocEnd: number;
  private readonly physBytes: number;
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly i32: Int32Array;
  private readonly i64: BigInt64Array;
  /** the cached translation: the page's address (NaN: none), its frame, its page-table word (-1: direct map) and that word's value */
  private tPage = NaN;
  private tPhys = 0;
  private tPte = -1;
  private tEntry = 0;
  /** the cached tags: [rLo, rHi) is cpu rCpu's live copy, inside page tPage, as of shadow epoch rEpoch */
  private rLo = 1;
  private rHi = 0;
  private rCpu = -2;
  private rEpoch = -1;
  /** checkContents()'s copy of the bytes it compares, and the same as words */
  private scratch = new Uint8Array(256);
  private scratch32 = new Int32Array(this.scratch.buffer);

  constructor(sab: SharedArrayBuffer) {
    const l = readHeader(sab);
    if (l.shadowShift !== 0 && l.shadowEntries > 0)
      throw new Error('AccessChecker: the isolation check needs a byte-granular shadow (shadowShift 0)');
    this.tags = new Int32Array(sab, l.shadowOffset, l.shadowEntries);
    this.walk = new PageWalk(sab);
    this.enabled = l.shadowEntries > 0;
    this.header = new Int32Array(sab, 0, PAGE_SIZE / 4);
    this.pt = new Int32Array(sab, l.ptOffset, l.vmallocPages);
    this.vmallocEnd = VMALLOC_START + l.vmallocBytes;
    this.physBytes = l.memoryBytes;
    this.u8 = new Uint8Array(sab, l.physOffset, l.memoryBytes);
    this.u16 = new Uint16Array(sab, l.physOffset, l.memoryBytes >>> 1);
    this.i32 = new Int32Array(sab, l.physOffset, l.memoryBytes >>> 2);
    this.i64 = new BigInt64Array(sab, l.physOffset, l.memoryBytes >>> 3);
  }

  /** The shadow epoch now: it moves after every change of the tags. */
  epoch(): number {
    return Atomics.load(this.header, H_SHADOW_EPOCH);
  }

  /** Whether the kernel may be zeroing memory now (an allocation is in flight). */
  busy(): boolean {
    return Atomics.load(this.header, H_SHADOW_BUSY) !== 0;
  }

  /** The shadow tag of the byte at physical address `phys`. */
  tagAt(phys: number): number {
    return this.tags[phys]!;
  }

  /** The physical address behind `va` by the checker's own walk, or -1 when nothing maps it. */
  phys(va: number): number {
    const off = va - this.tPage;
    if (off >= 0 && off < PAGE_SIZE && this.mapped()) return this.tPhys + off;
    return this.translate(va);
  }

  /** The walk of a translation-cache miss; caches the page when it is mapped. */
  private translate(va: number): number {
    this.rLo = 1; // the tag cache lives inside the cached page
    this.rHi = 0;
    if (va >= VMALLOC_START && va < this.vmallocEnd) {
      const idx = Math.floor((va - VMALLOC_START) / PAGE_SIZE);
      const entry = this.pt[idx]!; // pfn + 1, 0 when not present
      if (entry === 0) return -1;
      this.tPage = VMALLOC_START + idx * PAGE_SIZE;
      this.tPhys = (entry - 1) * PAGE_SIZE;
      this.tPte = idx;
      this.tEntry = entry;
      return this.tPhys + (va - this.tPage);
    }
    const d = va - PAGE_OFFSET;
    if (d >= 0 && d < this.physBytes) {
      const off = d % PAGE_SIZE;
      this.tPage = va - off;
      this.tPhys = d - off;
      this.tPte = -1;
      return d;
    }
    return -1;
  }

  /**
   * Pins a check of an access at `va` that passed: what it depended on, as [epoch, pte,
   * entry]. It holds while the shadow epoch (H_SHADOW_EPOCH) is still `epoch` (read before the
   * check) and, unless `pte` is -1 (the direct map, whose translation is fixed), page-table
   * word `pte` still holds `entry`: a caller may keep the three and test them itself, a few
   * loads on its hot path. Null when va is not mapped.
   */
  pin(va: number, epoch: number): [number, number, number] | null {
    if (this.phys(va) < 0) return null;
    return [epoch, this.tPte, this.tEntry];
  }

  /**
   * Whether [va, va + len) of `target`'s copy lies in the run of bytes the last full check
   * validated, and neither the shadow nor the page-table word under it has moved since.
   */
  private cached(va: number, len: number, target: number): boolean {
    return (
      va >= this.rLo &&
      va + len <= this.rHi &&
      (target === this.rCpu || target === ANY_CPU) &&
      this.header[H_SHADOW_EPOCH] === this.rEpoch &&
      this.mapped()
    );
  }

  /**
   * The whole check of a read of `width` bytes of `target`'s own copy at `va` that returned
   * `got`, when the caches decide it: the bytes lie in the validated run of that copy, neither
   * the shadow nor the page-table word under it has moved, and the frame holds `got` at an
   * aligned offset. False decides nothing: checkRead() and checkValue() then do.
   */
  readHit(va: number, width: 1 | 2 | 4, target: number, got: number): boolean {
    const off = va - this.tPage;
    if ((off & (width - 1)) !== 0 || !this.cached(va, width, target)) return false;
    const p = this.tPhys + off; // the run lies inside the cached page: off is a page offset
    return (width === 4 ? this.i32[p >>> 2] : width === 2 ? this.u16[p >>> 1] : this.u8[p]) === got;
  }

  /**
   * The frame address an access of `len` bytes at `va` to `target`'s copy must use, when the
   * caches decide that the access is allowed (as cached() does); -1 decides nothing, and the
   * access takes checkWrite() or checkRead(). After the access, its frame address equal to this
   * one and mapped() still true are checkPhys() passing.
   */
  hitPhys(va: number, len: number, target: number): number {
    return this.cached(va, len, target) ? this.tPhys + (va - this.tPage) : -1;
  }

  /** Whether the page-table word under the cached translation still holds what it held when cached. */
  mapped(): boolean {
    return this.tPte < 0 || this.pt[this.tPte] === this.tEntry;
  }

  /** Checks a write of `len` bytes at `va` by `cpu` into `target`'s copy. Null when allowed. */
  checkWrite(cpu: number, va: number, len: number, target: number): AccessFault | null {
    if (this.cached(va, len, target)) return null;
    return this.check(cpu, va, len, target, 'wrote');
  }

  /** Checks a read; the static section is readable like any live area. */
  checkRead(cpu: number, va: number, len: number, target: number): AccessFault | null {
    if (this.cached(va, len, target)) return null;
    return this.check(cpu, va, len, target, 'read');
  }

  private check(cpu: number, va: number, len: number, target: number, verb: string): AccessFault | null {
    const access = verb === 'read' ? 'read' : 'write';
    // the epoch before the tags are read: a change meanwhile leaves the cache stale, never wrong
    const epoch = Atomics.load(this.header, H_SHADOW_EPOCH);
    // the common case first: inside one page, one live copy of the named CPU
    if (va - this.pageOf(va) + len <= PAGE_SIZE) {
      const phys = this.phys(va);
      if (phys >= 0) {
        const first = this.tags[phys]!;
        if (first > 0 && this.tags[phys + len - 1] === first && (target === ANY_CPU || first % TAG_CPUS === target)) {
          this.cacheRun(va, phys, len, first, epoch);
          return null;
        }
      }
    }
    let done = 0;
    let tag0 = 0;
    while (done < len) {
      const a = va + done;
      const n = Math.min(len - done, PAGE_SIZE - (a - this.pageOf(a)));
      const phys = this.phys(a);
      if (phys < 0)
        return { kind: 'unmapped', cpu, access, addr: a, len, tag: 0, unitCpu: -1, detail: 'no page maps it' };
      const first = this.tags[phys]!;
      const last = this.tags[phys + n - 1]!;
      if (done === 0) {
        tag0 = first;
        if (first < 0)
          return {
            kind: 'use-after-free',
            cpu,
            access,
            addr: a,
            len,
            tag: first,
            unitCpu: tagCpu(first),
            detail: `${verb} an area that was freed`,
          };
        if (first > 0 && target !== ANY_CPU && tagCpu(first) !== target)
          return {
            kind: 'foreign-unit',
            cpu,
            access,
            addr: a,
            len,
            tag: first,
            unitCpu: tagCpu(first),
            detail:
              target === cpu
                ? `cpu ${tagCpu(first)}'s copy, not declared remote`
                : `cpu ${tagCpu(first)}'s copy, but the access named cpu ${target}`,
          };
      }
      if (first === 0 || last === 0 || first !== tag0 || last !== tag0) {
        // an access that starts in no area but right after one is that area's overrun: name it
        const before = done === 0 && first === 0 ? this.tagBefore(a, phys) : 0;
        const tag = tag0 || before;
        return {
          kind: 'out-of-bounds',
          cpu,
          access,
          addr: a,
          len,
          tag,
          unitCpu: tag ? tagCpu(tag) : -1,
          detail: before > 0 ? `${verb} just past the end of its area` : `${verb} past its area`,
        };
      }
      done += n;
    }
    return null;
  }

  /** The start of the page holding `va` (addresses are above 2^32: no bit operations). */
  private pageOf(va: number): number {
    return va - (va % PAGE_SIZE);
  }

  /**
   * Remembers the run of bytes around a checked access [va, va + len) (frame `phys`) that all
   * carry `tag`, within its page and RUN_SCAN bytes either side, as validated at `epoch`.
   */
  private cacheRun(va: number, phys: number, len: number, tag: number, epoch: number): void {
    // the whole access must carry the tag: the fast test above saw only its two ends
    for (let p = phys + 1; p < phys + len - 1; p++) if (this.tags[p] !== tag) return;
    const page = phys - (phys % PAGE_SIZE);
    const floor = Math.max(page, phys - RUN_SCAN);
    const ceil = Math.min(page + PAGE_SIZE, phys + len + RUN_SCAN);
    let lo = phys;
    while (lo > floor && this.tags[lo - 1] === tag) lo--;
    let hi = phys + len;
    while (hi < ceil && this.tags[hi] === tag) hi++;
    // the translation cache must hold va's page, as the tags were read: the run is valid only with it
    if (this.phys(va) !== phys) return;
    this.rLo = va - (phys - lo);
    this.rHi = va + (hi - phys);
    this.rCpu = tag % TAG_CPUS;
    this.rEpoch = epoch;
  }

  /** The tag of the byte before `va` (whose frame is `phys`), or 0 when none is mapped. */
  private tagBefore(va: number, phys: number): number {
    const prev = va % PAGE_SIZE ? phys - 1 : this.phys(va - 1);
    return prev >= 0 ? this.tags[prev]! : 0;
  }

  /** The data path used `phys` for `va`: it must be the frame the page table names. */
  checkPhys(cpu: number, va: number, phys: number, len: number): AccessFault | null {
    const off = va - this.tPage;
    if (off >= 0 && off < PAGE_SIZE && this.mapped() && phys === this.tPhys + off) return null;
    return this.checkPhysWalk(cpu, va, phys, len);
  }

  /** checkPhys() past the cached translation: a walk, and the finding if it disagrees. */
  private checkPhysWalk(cpu: number, va: number, phys: number, len: number): AccessFault | null {
    const want = this.phys(va);
    if (want === phys) return null;
    return {
      kind: want < 0 ? 'unmapped' : 'stale-translation',
      cpu,
      access: 'write',
      addr: va,
      len,
      tag: want < 0 ? 0 : this.tags[want]!,
      // an untagged frame is nobody's copy (tag 0 would read as cpu 0's)
      unitCpu: want < 0 || this.tags[want] === 0 ? -1 : tagCpu(this.tags[want]!),
      detail:
        want < 0
          ? `the access went to physical ${phys.toString(16)}, but no page maps it any more`
          : `the access went to physical ${phys.toString(16)}, the page table maps it to ${want.toString(16)}`,
    };
  }

  /**
   * After a byte-range write or read: memory seen through the checker's own walk must hold
   * `data`. (By the API's discipline nobody else writes an area while its user does.)
   */
  checkContents(cpu: number, va: number, data: Uint8Array): AccessFault | null {
    const len = data.length;
    const words = this.wordsOf(data);
    for (let i = 0; i < len;) {
      const a = va + i;
      const p = this.phys(a);
      if (p < 0) return this.contentsFault(cpu, a, -1, i, len);
      const n = Math.min(len - i, PAGE_SIZE - (a - this.tPage)); // phys() left a's page cached
      const k = this.differs(p, n, data, words, i, 0);
      if (k >= 0) return this.contentsFault(cpu, a + k, p + k, i + k, len);
      i += n;
    }
    return null;
  }

  /** checkContents() of a memset: every byte of [va, va + len) must be `byte`. */
  checkFill(cpu: number, va: number, byte: number, len: number): AccessFault | null {
    for (let i = 0; i < len;) {
      const a = va + i;
      const p = this.phys(a);
      if (p < 0) return this.contentsFault(cpu, a, -1, i, len);
      const n = Math.min(len - i, PAGE_SIZE - (a - this.tPage));
      const k = this.differs(p, n, null, null, 0, byte & 0xff);
      if (k >= 0) return this.contentsFault(cpu, a + k, p + k, i + k, len);
      i += n;
    }
    return null;
  }

  /**
   * `data` as 32-bit words from its byte 0: a copy in the checker's scratch buffer, which grows
   * to the longest range checked (a view of the caller's bytes would cost an allocation per
   * access, several times the copy); null past SCRATCH_MAX bytes.
   */
  private wordsOf(data: Uint8Array): Int32Array | null {
    if (data.length > this.scratch.length) {
      if (data.length > SCRATCH_MAX) return null;
      let size = this.scratch.length;
      while (size < data.length) size *= 2;
      this.scratch = new Uint8Array(size);
      this.scratch32 = new Int32Array(this.scratch.buffer);
    }
    this.scratch.set(data);
    return this.scratch32;
  }

  /**
   * The first of `n` frame bytes from `p` that is not data[from + k] (or `byte`, without data);
   * -1 when none. `words` is data as words (wordsOf()), when there is such a copy.
   */
  private differs(
    p: number,
    n: number,
    data: Uint8Array | null,
    words: Int32Array | null,
    from: number,
    byte: number,
  ): number {
    const u8 = this.u8;
    const base = p >>> 0; // memory stays below 4 GiB: an unsigned index, not a double
    let k = 0;
    // four bytes at a time where both sides are aligned (the first differing byte is then found below)
    if ((base & 3) === 0 && n >= 16) {
      const i32 = this.i32;
      const w0 = base >>> 2;
      const count = n >>> 2;
      if (!data) {
        const pattern = Math.imul(byte, 0x01010101);
        while (k < count && i32[w0 + k] === pattern) k++;
        k *= 4;
      } else if ((from & 3) === 0 && words) {
        const d0 = from >>> 2;
        while (k < count && i32[w0 + k] === words[d0 + k]) k++;
        k *= 4;
      } else if (((data.byteOffset + from) & 3) === 0) {
        const d = new Int32Array(data.buffer, data.byteOffset + from, count);
        while (k < count && i32[w0 + k] === d[k]) k++;
        k *= 4;
      }
    }
    if (data) {
      for (; k < n; k++) if (u8[base + k] !== data[from + k]) return k;
    } else for (; k < n; k++) if (u8[base + k] !== byte) return k;
    return -1;
  }

  /** Byte `i` of a byte-range access (at `va`, frame `p`, -1 unmapped) is not in the frame the page table maps. */
  private contentsFault(cpu: number, va: number, p: number, i: number, len: number): AccessFault {
    return {
      kind: 'stale-translation',
      cpu,
      access: 'write',
      addr: va,
      len,
      tag: p < 0 ? 0 : this.tags[p]!,
      unitCpu: p < 0 || this.tags[p] === 0 ? -1 : tagCpu(this.tags[p]!),
      detail: `byte ${i} did not reach the frame the page table maps`,
    };
  }

  /** What the page table says is at `va` (little endian; 1 and 2 bytes unsigned, 4 signed), or NaN. */
  readOwn(va: number, width: 1 | 2 | 4): number {
    const off = va - this.tPage;
    // inside the cached page and naturally aligned: one typed load from the frame (a call with
    // small-integer arguments, cheap even where the JIT does not inline it)
    if (off >= 0 && off + width <= PAGE_SIZE && (off & (width - 1)) === 0) {
      const v = this.frameLoad(off, width);
      if (v === v) return v;
    }
    return this.readOwnWalk(va, width);
  }

  /** The value at offset `off` of the cached page, `width` bytes; NaN when its page-table word changed. */
  private frameLoad(off: number, width: 1 | 2 | 4): number {
    if (!this.mapped()) return NaN;
    const p = this.tPhys + off;
    return width === 4 ? this.i32[p / 4]! : width === 2 ? this.u16[p / 2]! : this.u8[p]!;
  }

  /** readOwn() byte by byte, each through the walk. */
  private readOwnWalk(va: number, width: 1 | 2 | 4): number {
    let v = 0;
    for (let i = width - 1; i >= 0; i--) {
      const q = this.phys(va + i);
      if (q < 0) return NaN;
      v = v * 256 + this.u8[q]!;
    }
    return width === 4 ? v | 0 : v;
  }

  /** A read returned `got` for `va`: it must be what the page table's frame holds. */
  checkValue(cpu: number, va: number, width: 1 | 2 | 4, got: number): AccessFault | null {
    // the common case inline: the cached page's frame holds it (frameLoad is NaN if its word moved)
    const off = va - this.tPage;
    if (off >= 0 && off + width <= PAGE_SIZE && (off & (width - 1)) === 0 && this.frameLoad(off, width) === got)
      return null;
    const want = this.readOwn(va, width);
    return want === got ? null : this.valueFault(cpu, va, width, got, want);
  }

  /** A 64-bit read returned `got` for `va`: the frame's eight bytes must hold it. */
  checkValue64(cpu: number, va: number, got: bigint): AccessFault | null {
    const off = va - this.tPage;
    if (off >= 0 && off + 8 <= PAGE_SIZE && (off & 7) === 0 && this.mapped())
      if (this.i64[(this.tPhys + off) / 8] === got) return null;
    return (
      this.checkValue(cpu, va, 4, Number(BigInt.asIntN(32, got))) ??
      this.checkValue(cpu, va + 4, 4, Number(BigInt.asIntN(32, got >> 32n)))
    );
  }

  private valueFault(cpu: number, va: number, width: 1 | 2 | 4, got: number, want: number): AccessFault | null {
    if (Object.is(want, got)) return null;
    const p = this.phys(va);
    return {
      kind: 'stale-translation',
      cpu,
      access: 'read',
      addr: va,
      len: width,
      tag: p < 0 ? 0 : this.tags[p]!,
      unitCpu: -1,
      detail: `a ${width * 8}-bit read returned ${got}, the frame the page table maps holds ${want}`,
    };
  }
}

/**
 * The machine's configuration, as the checker knows it: enough to say which CPUs share a
 * group, in which order their units come, and which node must back each unit.
 */
export interface UnitConfig {
  cpus: number;
  cpuToNode: (cpu: number) => number;
  /** CPUs are grouped by node (sparse NUMA groups); otherwise one group in CPU order */
  groupsByNode: boolean;
  unitSize: number;
}

/**
 * Checks __per_cpu_offset[] against the configuration: units never overlap, the CPUs of a
 * group sit one unit apart in CPU order, and with node groups every unit is backed by its
 * CPU's own node. Returns one line per disagreement.
 */
export function checkUnitLayout(
  cfg: UnitConfig,
  offsets: readonly number[],
  staticStart: number,
  walk: PageWalk,
): string[] {
  const out: string[] = [];
  const groupOf = (c: number): number => (cfg.groupsByNode ? cfg.cpuToNode(c) : 0);
  const first = new Map<number, number>();
  const members = new Map<number, number>();
  const rank = new Map<number, number>();
  for (let c = 0; c < cfg.cpus; c++) {
    const g = groupOf(c);
    if (!first.has(g)) first.set(g, c);
    rank.set(c, members.get(g) ?? 0); // CPUs of a group take its units in CPU order
    members.set(g, rank.get(c)! + 1);
  }
  for (let c = 0; c < cfg.cpus; c++) {
    const lead = first.get(groupOf(c))!;
    const want = offsets[lead]! + rank.get(c)! * cfg.unitSize;
    if (offsets[c] !== want)
      out.push(`cpu ${c}'s unit is at offset ${offsets[c]}, its group (led by cpu ${lead}) puts it at ${want}`);
    for (let d = 0; d < c; d++)
      if (Math.abs(offsets[c]! - offsets[d]!) < cfg.unitSize) out.push(`the units of cpu ${d} and cpu ${c} overlap`);
    if (cfg.groupsByNode) {
      const p = walk.walk(staticStart + offsets[c]!);
      if (p < 0) out.push(`cpu ${c}'s unit of the first chunk is not mapped`);
      else if (walk.nodeOf(p) !== cfg.cpuToNode(c))
        out.push(`cpu ${c}'s unit is on node ${walk.nodeOf(p)}, not on its own node ${cfg.cpuToNode(c)}`);
    }
  }
  return out;
}

/** The main-thread half: tags every copy as the actor serves and frees allocations. */
export class IsolationTracker {
  readonly violations: IsolationViolation[] = [];
  /** the checker's own __per_cpu_offset[], taken at boot and checked against the configuration */
  readonly offsets: readonly number[];
  readonly walk: PageWalk;
  readonly nr_cpus: number;
  private readonly tags: Int32Array;
  private readonly header: Int32Array;
  private readonly enabled: boolean;
  /** allocation requests taken and not yet answered (their count is H_SHADOW_BUSY) */
  private readonly allocating = new Set<number>();
  private readonly byId = new Map<number, AllocationInfo>();
  private readonly byPtr = new Map<number, number>();
  private readonly replies = new ReplyFollower({
    allocated: (cpu, _tick, _ask, r) => {
      if (r.ok) this.allocated(cpu, r.ptr, r.size, r.chunk, r.off);
    },
    freed: (ptr, tick) => this.freed(ptr, tick),
  });
  private nextId = TAG_STATIC + 1;

  constructor(
    pc: Percpu,
    private readonly seed = 0,
    opts: { groupsByNode?: boolean } = {},
  ) {
    const m = pc.machine;
    const l = readHeader(m.sab);
    this.walk = new PageWalk(m.sab);
    this.tags = new Int32Array(m.sab, l.shadowOffset, l.shadowEntries);
    this.header = new Int32Array(m.sab, 0, PAGE_SIZE / 4);
    this.enabled = l.shadowEntries > 0;
    this.nr_cpus = m.cpus;
    this.offsets = [...pc.__per_cpu_offset];
    const start = pc.image.per_cpu_start;
    const cfg: UnitConfig = {
      cpus: m.cpus,
      cpuToNode: (c) => m.cpuToNode(c),
      groupsByNode: opts.groupsByNode ?? false,
      unitSize: pc.pcpu_unit_size,
    };
    for (const line of checkUnitLayout(cfg, this.offsets, start, this.walk))
      this.violations.push({
        checker: 'isolation',
        kind: 'unit-layout',
        seed,
        cpu: -1,
        addr: '-',
        unitCpu: -1,
        allocation: null,
        message: `unit-layout: ${line} (seed ${seed})`,
      });
    // the static section of every unit belongs to the kernel image
    for (let c = 0; c < this.nr_cpus; c++)
      this.tag(start + this.offsets[c]!, pc.image.static_size, tagOf(TAG_STATIC, c));
  }

  /** Sets the shadow of [va, va + len) through the checker's own walk; false if a page is unmapped. */
  private tag(va: number, len: number, tag: number): boolean {
    if (!this.enabled) return true;
    if (!this.walk.mapped(va, len)) return false;
    for (let i = 0; i < len;) {
      const p = this.walk.walk(va + i);
      const n = Math.min(len - i, PAGE_SIZE - ((va + i) % PAGE_SIZE));
      this.tags.fill(tag, p, p + n);
      i += n;
    }
    // after the tags, so that an access check that validated against the old ones misses
    Atomics.add(this.header, H_SHADOW_EPOCH, 1);
    return true;
  }

  /** The address of `cpu`'s copy of a percpu pointer, by the checker's own offsets. */
  copyOf(ptr: number, cpu: number): number {
    return ptr + this.offsets[cpu]!;
  }

  /** Follows one actor event. */
  observe(e: ActorEvent): void {
    if (this.enabled && e.type === 'arrive' && (e.req.kind === 'alloc' || e.req.kind === 'alloc_batch')) {
      // from here until its reply the kernel may zero memory a freed area's tags still name
      this.allocating.add(e.task);
      Atomics.add(this.header, H_SHADOW_BUSY, 1);
    }
    this.replies.observe(e);
    if ((e.type === 'done' || e.type === 'bug' || e.type === 'refuse') && this.allocating.delete(e.task))
      Atomics.sub(this.header, H_SHADOW_BUSY, 1);
  }

  private allocated(cpu: number, ptr: number, size: number, chunk: number, off: number): void {
    const id = this.nextId++;
    if (this.nextId * TAG_CPUS >= 0x7fff_ffff) this.nextId = TAG_STATIC + 1; // tags wrap after two million allocations
    this.byId.set(id, { id, ptr, size, chunk: chunk === -1 ? 'reserved' : chunk, offset: off, cpu, live: true });
    this.byPtr.set(ptr, id);
    for (let c = 0; c < this.nr_cpus; c++) {
      const va = this.copyOf(ptr, c);
      const nz = this.walk.firstNonZero(va, size);
      if (nz === -1)
        this.violations.push(
          this.describe({
            kind: 'unmapped',
            cpu,
            access: 'alloc',
            addr: va,
            len: size,
            tag: tagOf(id, c),
            unitCpu: c,
            detail: `cpu ${c}'s copy of the new area is not mapped`,
          }),
        );
      else if (nz)
        this.violations.push({
          ...this.describe({
            kind: 'nonzero-new-area',
            cpu,
            access: 'alloc',
            addr: va + nz[0],
            len: size,
            tag: tagOf(id, c),
            unitCpu: c,
            detail: `byte ${nz[0]} of cpu ${c}'s copy is ${nz[1]}`,
          }),
          previous: this.previousOwner(va + nz[0]),
        });
      this.tag(va, size, tagOf(id, c));
    }
  }

  /** Who held the byte at `va` before it is tagged anew: its shadow tag still names them. */
  private previousOwner(va: number): PreviousOwner {
    const p = this.enabled ? this.walk.walk(va) : -1;
    const tag = p < 0 ? 0 : this.tags[p]!;
    if (tag === 0) return { allocation: null, unitCpu: -1 };
    const id = tagAlloc(tag);
    if (id === TAG_STATIC) return { allocation: null, unitCpu: tagCpu(tag), static: true };
    const known = this.byId.get(id);
    return { allocation: known ? { ...known, live: tag > 0 } : null, unitCpu: tagCpu(tag) };
  }

  private freed(ptr: number, tick: number): void {
    const id = this.byPtr.get(ptr);
    if (id === undefined) return;
    this.byPtr.delete(ptr);
    const info = this.byId.get(id)!;
    info.live = false;
    info.freedTick = tick;
    // a copy whose pages went away with its chunk has nothing left to mark
    for (let c = 0; c < this.nr_cpus; c++) this.tag(this.copyOf(ptr, c), info.size, -tagOf(id, c));
  }

  /** Names the allocation behind a fault found by any thread. */
  describe(f: AccessFault): IsolationViolation {
    const id = f.tag ? tagAlloc(f.tag) : 0;
    const known = id && id !== TAG_STATIC ? (this.byId.get(id) ?? null) : null;
    // as it was when the fault happened: a negative tag means already freed then
    const info = known ? { ...known, live: f.tag > 0 } : null;
    const what = info
      ? `allocation #${info.id} (${info.size} bytes at chunk ${info.chunk} offset ${info.offset}, made by cpu ${info.cpu}${info.live ? '' : ', freed'})`
      : id === TAG_STATIC
        ? 'the static percpu section'
        : 'no allocation';
    const addr = hex(f.addr);
    const unit = f.unitCpu >= 0 ? `cpu ${f.unitCpu}'s copy` : 'no copy';
    const did =
      f.kind === 'nonzero-new-area'
        ? 'got a new area that is not zero'
        : `${f.access === 'read' ? 'read' : 'wrote'} ${f.len} bytes${f.kind === 'stale-translation' ? ' through a stale translation' : ''}`;
    return {
      checker: 'isolation',
      kind: f.kind,
      seed: this.seed,
      cpu: f.cpu,
      addr,
      unitCpu: f.unitCpu,
      allocation: info,
      message: `${f.kind}: cpu ${f.cpu} ${did} at ${addr} in ${unit}, ${what}: ${f.detail} (seed ${this.seed})`,
    };
  }
}
