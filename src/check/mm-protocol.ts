/**
 * The memory-management protocol, checked from the checker's own books: a reverse map of the
 * vmalloc page table kept from its change events, the generation kept from its bumps, and for
 * controlled runs each CPU's data-path operations in the order they happened. Nothing here
 * reads the code under test's own bookkeeping.
 *
 *  - a frame given back to the page allocator while a page-table entry still maps it;
 *  - an entry cleared and its frame freed without a generation bump in between (a TLB may
 *    still hold it), or a bump that covers no changed entry (the entries change after it);
 *  - a TLB fill that is not a sequence-lock reader: the generation it is tagged with was not
 *    read before the table walk;
 *  - an access through a frame the page table no longer maps (a stale translation used);
 *  - a torn access: a 64-bit access done as two 32-bit halves while another CPU wrote (or read
 *    what this CPU was writing) between them, outside a reader section that retries.
 */
import type { Violation } from './violation.ts';

const PAGE = 4096;
const VMALLOC_START = 0x0000_2000_0000_0000;

export type MmReport = (v: Omit<Violation, 'tick' | 'checker'> & { checker?: Violation['checker'] }) => void;

interface CpuBooks {
  /** the last generation read in the current operation, or null */
  gen: number | null;
  /** the generation read before the last walk, or null when none was */
  genAtWalk: number | null;
  /** an open split access: its first half is done */
  split: Split | null;
  /** the open u64_stats reader section */
  section: Section | null;
}

interface Split {
  va: number;
  write: boolean;
  /** other CPUs' conflicting accesses between the halves */
  others: { cpu: number; write: boolean; section: Section | null }[];
}

interface Section {
  retried: boolean | null;
  pending: string[];
}

const hex = (n: number): string => `0x${n.toString(16)}`;

export class MmProtocolChecker {
  /** vmalloc page -> pfn, from the change events */
  private readonly pte = new Map<number, number>();
  /** pfn -> the vmalloc pages mapping it */
  private readonly rmap = new Map<number, Set<number>>();
  /** frames unmapped since the last bump: pfn -> vmalloc page */
  private readonly uncovered = new Map<number, number>();
  /** vmalloc page -> the generation current when its entry last changed */
  private readonly changedAt = new Map<number, number>();
  private generation: number;
  private readonly cpus: CpuBooks[] = [];

  constructor(
    private readonly report: MmReport,
    /** the page table as it is when watching starts, vmalloc page -> pfn + 1 */
    pt: Int32Array,
    generation: number,
  ) {
    this.generation = generation;
    for (let vpn = 0; vpn < pt.length; vpn++) if (pt[vpn]! > 0) this.map(vpn, pt[vpn]! - 1);
  }

  private map(vpn: number, pfn: number): void {
    this.pte.set(vpn, pfn);
    let s = this.rmap.get(pfn);
    if (!s) this.rmap.set(pfn, (s = new Set()));
    s.add(vpn);
  }

  // ------------------------------------------------------------ the page table (main thread)

  /** Whether any vmalloc page is mapped now. */
  get mapsAny(): boolean {
    return this.pte.size > 0;
  }

  /** An entry changed (PtObserver.pte). */
  pteChanged(vpn: number, oldPfn: number, newPfn: number): void {
    if (oldPfn >= 0) {
      this.pte.delete(vpn);
      const s = this.rmap.get(oldPfn);
      s?.delete(vpn);
      if (s && !s.size) this.rmap.delete(oldPfn);
      this.uncovered.set(oldPfn, vpn);
    }
    if (newPfn >= 0) this.map(vpn, newPfn);
    this.changedAt.set(vpn, this.generation);
  }

  /** The generation was bumped (PtObserver.gen). */
  genBumped(value: number): void {
    this.generation = value;
    if (this.uncovered.size === 0)
      this.report({
        checker: 'mm',
        kind: 'gen-bump-early',
        cpu: -1,
        message: `page-table generation bumped to ${value} before the entries it covers changed: no entry had been cleared since the last bump, so a TLB filled now caches a frame about to go, tagged as current`,
      });
    this.uncovered.clear();
  }

  /**
   * The generation bumped by a flush that is not our page table's (another vmalloc user's,
   * aimed by a controlled run): current from now on, but it covers none of our changes, so
   * an entry of ours cleared and not yet bumped for stays uncovered.
   */
  foreignFlush(value: number): void {
    this.generation = value;
  }

  /** A block went back to the page allocator (Buddy.onFree). */
  framesFreed(pfn: number, order: number): void {
    for (let p = pfn; p < pfn + (1 << order); p++) {
      const maps = this.rmap.get(p);
      if (maps?.size) {
        const vpn = [...maps][0]!;
        this.report({
          checker: 'mm',
          kind: 'freed-while-mapped',
          cpu: -1,
          message: `frame ${p} given back to the page allocator while page-table entry ${hex(VMALLOC_START + vpn * PAGE)} still maps it: unmap before freeing`,
          data: { pfn: p, va: VMALLOC_START + vpn * PAGE },
        });
        return;
      }
      const vpn = this.uncovered.get(p);
      if (vpn !== undefined) {
        this.report({
          checker: 'mm',
          kind: 'pte-no-bump',
          cpu: -1,
          message: `page-table entry ${hex(VMALLOC_START + vpn * PAGE)} changed (frame ${p} unmapped) without a generation bump before the frame went back to the page allocator: a TLB may still use it`,
          data: { pfn: p, va: VMALLOC_START + vpn * PAGE },
        });
        return;
      }
    }
  }

  /** Nothing runs: every change must be covered by a bump. */
  idle(): void {
    for (const [pfn, vpn] of this.uncovered) {
      this.report({
        checker: 'mm',
        kind: 'pte-no-bump',
        cpu: -1,
        message: `page-table entry ${hex(VMALLOC_START + vpn * PAGE)} changed (frame ${pfn} unmapped) and no generation bump followed`,
      });
      return;
    }
  }

  // ------------------------------------------------------------ the data path (controlled runs)

  private books(cpu: number): CpuBooks {
    let b = this.cpus[cpu];
    if (!b) this.cpus[cpu] = b = { gen: null, genAtWalk: null, split: null, section: null };
    return b;
  }

  /** A generation read by a CPU. */
  genRead(cpu: number, value: number): void {
    this.books(cpu).gen = value;
  }

  /** A page-table read by a CPU. */
  walked(cpu: number): void {
    const b = this.books(cpu);
    b.genAtWalk = b.gen;
  }

  /** A TLB fill: the translation of `va`'s page to `pfn`, tagged with `tag`. */
  filled(cpu: number, va: number, pfn: number, tag: number): void {
    if (va < VMALLOC_START) return; // the direct map is an offset: no walk, nothing to go stale
    const b = this.books(cpu);
    const where = `cpu ${cpu} filled its TLB with ${hex(va)} -> frame ${pfn} under generation ${tag}`;
    if (b.genAtWalk === null)
      this.report({
        checker: 'mm',
        kind: 'tlb-fill-order',
        cpu,
        message: `${where}, but read no generation before the table walk: a TLB fill reads the generation, walks, and reads it again (the generation read after the walk can be one that an unmap during the walk already bumped)`,
        data: { va, pfn, tag },
      });
    else if (b.genAtWalk !== tag)
      this.report({
        checker: 'mm',
        kind: 'tlb-fill-order',
        cpu,
        message: `${where}, but the walk ran under generation ${b.genAtWalk}: a translation used under a generation it was not read under`,
        data: { va, pfn, tag },
      });
  }

  /** A data access of `len` bytes at `va` through `frame` (-1: direct map or not checked). */
  access(cpu: number, va: number, len: number, write: boolean, half: 0 | 1 | 2, frame: number): void {
    const b = this.books(cpu);
    b.gen = null;
    b.genAtWalk = null;
    if (frame >= 0 && va >= VMALLOC_START) {
      const vpn = Math.floor((va - VMALLOC_START) / PAGE);
      const now = this.pte.get(vpn);
      if (now !== frame) {
        const at = this.changedAt.get(vpn);
        this.report({
          checker: 'mm',
          kind: 'stale-tlb',
          cpu,
          message: `cpu ${cpu} ${write ? 'wrote' : 'read'} ${hex(va)} through frame ${frame}, which the page table no longer maps there (${now === undefined ? 'not present' : `frame ${now}`}${at !== undefined ? `, changed under generation ${at}` : ''}): a stale translation used, the generation bumped before its entry changed or not at all`,
          data: { va, frame },
        });
      }
    }
    // another CPU between the halves of a split access
    for (let c = 0; c < this.cpus.length; c++) {
      const s = c === cpu ? null : this.cpus[c]?.split;
      if (s && va < s.va + 8 && s.va < va + len && (s.write || write))
        s.others.push({ cpu, write, section: write ? null : b.section });
    }
    if (half === 1) b.split = { va, write, others: [] };
    else if (half === 2 && b.split) {
      const s = b.split;
      b.split = null;
      for (const o of s.others) this.torn(cpu, s, o);
    }
  }

  private torn(cpu: number, s: Split, o: Split['others'][number]): void {
    const at = hex(s.va);
    if (!s.write) {
      // this CPU read the halves and another wrote between them
      this.tornRead(
        cpu,
        this.books(cpu).section,
        `torn read: cpu ${cpu} read the 64-bit value at ${at} as two 32-bit halves and cpu ${o.cpu} wrote it between them`,
      );
    } else if (!o.write)
      this.tornRead(
        o.cpu,
        o.section,
        `torn read: cpu ${o.cpu} read ${at} while cpu ${cpu} wrote its 64-bit value as two 32-bit halves`,
      );
    else
      this.report({
        checker: 'races',
        kind: 'torn-write',
        cpu,
        message: `torn write: cpu ${cpu} wrote the 64-bit value at ${at} as two 32-bit halves and cpu ${o.cpu} wrote it between them`,
      });
  }

  private tornRead(reader: number, section: Section | null, message: string): void {
    const m = `${message} (a reader needs a u64_stats_sync-style sequence count and retries)`;
    if (section && section.retried === true) return;
    if (section && section.retried === null) section.pending.push(m);
    else this.report({ checker: 'races', kind: 'torn-read', cpu: reader, message: m });
  }

  /** A u64_stats reader section begins on a CPU. */
  sectionBegin(cpu: number): void {
    this.books(cpu).section = { retried: null, pending: [] };
  }

  /** It ends: torn reads inside it count only when the reader does not retry. */
  sectionEnd(cpu: number, retried: boolean): void {
    const b = this.books(cpu);
    const s = b.section;
    b.section = null;
    if (!s) return;
    s.retried = retried;
    if (!retried && s.pending.length) this.report({ checker: 'races', kind: 'torn-read', cpu, message: s.pending[0]! });
  }
}
