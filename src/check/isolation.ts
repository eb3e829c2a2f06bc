/**
 * The isolation checker, in two halves that share the shadow region of src/mem:
 *
 *  - the tracker (main thread) follows the actor: when an allocation is served it checks
 *    that the new area reads zero in every unit and tags every unit's copy with the
 *    allocation's tag; when it is freed, the tag turns negative (freed, not unowned);
 *  - the access check (any thread) looks at each write a CPU makes through the per-CPU API:
 *    the page must be mapped, it must back the writer's own unit unless the write was
 *    declared remote (per_cpu_ptr to another CPU), and every byte must belong to one live
 *    allocation.
 *
 * Neither half touches the allocator: the shadow is the checker's own state.
 */
import type { ActorEvent, Request } from '../actor/types.ts';
import type { Percpu } from '../kernel/percpu.ts';
import { MemAccess, faultName } from '../mem/access.ts';
import { PAGE_SIZE, PI_CPU, PI_WORDS, readHeader } from '../mem/layout.ts';

/** The tag of the kernel image's static percpu section in every unit. */
export const TAG_STATIC = 1;

export type IsolationKind = 'foreign-unit' | 'use-after-free' | 'out-of-bounds' | 'unmapped' | 'nonzero-new-area';

/** What the access check finds, as plain data (it crosses threads). */
export interface AccessFault {
  kind: IsolationKind;
  cpu: number;
  addr: number;
  len: number;
  /** the shadow tag at the offending byte (negative: freed allocation) */
  tag: number;
  /** the CPU whose unit the byte is in (-1 when unknown) */
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
  message: string;
}

/** The per-write check. Pure over the shared buffer; usable in any thread. */
export class AccessChecker {
  private readonly tags: Int32Array;
  private readonly pageInfo: Int32Array;
  readonly enabled: boolean;

  constructor(
    sab: SharedArrayBuffer,
    private readonly mem: MemAccess = new MemAccess(sab),
  ) {
    const l = readHeader(sab);
    if (l.shadowShift !== 0 && l.shadowEntries > 0) throw new Error('AccessChecker: the isolation check needs a byte-granular shadow (shadowShift 0)');
    this.tags = new Int32Array(sab, l.shadowOffset, l.shadowEntries);
    this.pageInfo = new Int32Array(sab, l.pageInfoOffset, l.nrPages * PI_WORDS);
    this.enabled = l.shadowEntries > 0;
  }

  /** Checks a write of `len` bytes at `va` by `cpu`. Returns null when it is allowed. */
  checkWrite(cpu: number, va: number, len: number, remote: boolean): AccessFault | null {
    // the common case first: inside one page, own unit (or declared remote), one live area
    if ((va & (PAGE_SIZE - 1)) + len <= PAGE_SIZE) {
      const phys = this.mem.translate(va);
      if (phys >= 0) {
        const unitCpu = this.pageInfo[(phys >>> 12) * PI_WORDS + PI_CPU]!;
        const first = this.tags[phys]!;
        if ((remote || unitCpu < 0 || unitCpu === cpu) && first > 0 && this.tags[phys + len - 1] === first) return null;
      }
    }
    return this.slowCheck(cpu, va, len, remote);
  }

  private slowCheck(cpu: number, va: number, len: number, remote: boolean): AccessFault | null {
    let done = 0;
    let tag0 = 0;
    while (done < len) {
      const a = va + done;
      const n = Math.min(len - done, PAGE_SIZE - (a & (PAGE_SIZE - 1)));
      const phys = this.mem.translate(a);
      if (phys < 0) return { kind: 'unmapped', cpu, addr: a, len, tag: 0, unitCpu: -1, detail: faultName(phys) };
      const unitCpu = this.pageInfo[Math.floor(phys / PAGE_SIZE) * PI_WORDS + PI_CPU]!;
      if (!remote && unitCpu >= 0 && unitCpu !== cpu)
        return { kind: 'foreign-unit', cpu, addr: a, len, tag: this.tags[phys]!, unitCpu, detail: `cpu ${unitCpu}'s unit, not declared remote` };
      const first = this.tags[phys]!;
      const last = this.tags[phys + n - 1]!;
      if (done === 0) tag0 = first;
      if (done === 0 && first < 0) return { kind: 'use-after-free', cpu, addr: a, len, tag: first, unitCpu, detail: 'the area was freed' };
      if (first === 0 || last === 0 || first !== tag0 || last !== tag0)
        return { kind: 'out-of-bounds', cpu, addr: a, len, tag: tag0, unitCpu, detail: 'the write leaves its area' };
      done += n;
    }
    return null;
  }
}

/** The main-thread half: tags allocations as the actor serves and frees them. */
export class IsolationTracker {
  readonly violations: IsolationViolation[] = [];
  private readonly byTag = new Map<number, AllocationInfo>();
  private readonly byPtr = new Map<number, number>();
  private readonly requests = new Map<number, Request>();
  private nextTag = TAG_STATIC + 1;

  constructor(
    private readonly pc: Percpu,
    private readonly seed = 0,
  ) {
    // the static section of every unit belongs to the kernel image
    const m = pc.machine;
    if (!m.shadow.enabled) return;
    for (let cpu = 0; cpu < pc.nr_cpu_ids; cpu++) m.shadow.setVirt(m.access, pc.pcpu_base_addr + pc.pcpu_unit_offsets[cpu]!, pc.pcpu_static_size, TAG_STATIC);
  }

  /** Follows one actor event. */
  observe(e: ActorEvent): void {
    if (e.type === 'arrive') this.requests.set(e.task, e.req);
    else if (e.type === 'done' || e.type === 'bug') {
      const req = this.requests.get(e.task);
      this.requests.delete(e.task);
      if (!req || e.type === 'bug') return;
      const r = e.reply;
      if (req.kind === 'alloc' && 'ptr' in r && r.ok) {
        this.allocated(req.cpu, r.ptr, r.size, r.chunk, r.off);
      } else if (req.kind === 'alloc_batch' && 'batch' in r) {
        for (const b of r.batch) if (b.ok) this.allocated(req.cpu, b.ptr, b.size, b.chunk, b.off);
      } else if (req.kind === 'free') {
        this.freed(req.ptr);
      } else if (req.kind === 'free_batch') {
        for (const p of req.ptrs) this.freed(p);
      }
    }
  }

  private allocated(cpu: number, ptr: number, size: number, chunk: number, off: number): void {
    const m = this.pc.machine;
    const tag = this.nextTag++;
    this.byTag.set(tag, { id: tag, ptr, size, chunk: chunk === -1 ? 'reserved' : chunk, offset: off, cpu, live: true });
    this.byPtr.set(ptr, tag);
    if (!m.shadow.enabled) return;
    for (let c = 0; c < this.pc.nr_cpu_ids; c++) {
      const va = this.pc.per_cpu_ptr(ptr, c);
      const bytes = m.access.readBytes(va, size);
      const nz = bytes ? bytes.findIndex((b) => b !== 0) : -1;
      if (nz >= 0) {
        this.violations.push(
          this.describe({ kind: 'nonzero-new-area', cpu, addr: va + nz, len: size, tag, unitCpu: c, detail: `byte ${nz} of cpu ${c}'s copy is ${bytes![nz]}` }),
        );
      }
      m.shadow.setVirt(m.access, va, size, tag);
    }
  }

  private freed(ptr: number): void {
    const tag = this.byPtr.get(ptr);
    if (tag === undefined) return;
    this.byPtr.delete(ptr);
    const info = this.byTag.get(tag)!;
    info.live = false;
    const m = this.pc.machine;
    if (!m.shadow.enabled) return;
    for (let c = 0; c < this.pc.nr_cpu_ids; c++) {
      const va = this.pc.per_cpu_ptr(ptr, c);
      // a freed area whose pages went away with its chunk has nothing left to mark
      if (m.access.checkRange(va, info.size) === 0) m.shadow.setVirt(m.access, va, info.size, -tag);
    }
  }

  /** Names the allocation behind a fault found by any thread. */
  describe(f: AccessFault): IsolationViolation {
    const known = f.tag === TAG_STATIC ? null : (this.byTag.get(Math.abs(f.tag)) ?? null);
    // as it was when the fault happened: a negative tag means already freed then
    const info = known ? { ...known, live: f.tag > 0 } : null;
    const what = info
      ? `allocation #${info.id} (${info.size} bytes at chunk ${info.chunk} offset ${info.offset}, made by cpu ${info.cpu}${info.live ? '' : ', freed'})`
      : f.tag === TAG_STATIC
        ? 'the static percpu section'
        : 'no allocation';
    const addr = f.addr.toString(16).padStart(16, '0');
    const unit = f.unitCpu >= 0 ? `cpu ${f.unitCpu}'s unit` : 'no unit';
    return {
      checker: 'isolation',
      kind: f.kind,
      seed: this.seed,
      cpu: f.cpu,
      addr,
      unitCpu: f.unitCpu,
      allocation: info,
      message: `${f.kind}: cpu ${f.cpu} ${f.kind === 'nonzero-new-area' ? 'got a new area that is not zero' : `wrote ${f.len} bytes`} at ${addr} in ${unit}, ${what}: ${f.detail} (seed ${this.seed})`,
    };
  }
}
