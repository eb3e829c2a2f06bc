/**
 * The isolation checker: each kind of violation, committed on purpose by a small workload,
 * is reported with the kind, the CPU, the address, the allocation (id, size, chunk, offset),
 * the CPU whose unit was hit, and the seed.
 */
import { describe, expect, it } from 'vitest';
import { CpuFault } from '../../src/api/per-cpu.ts';
import { PAGE_SIZE, readHeader } from '../../src/mem/layout.ts';
import { AccessChecker } from '../../src/check/isolation.ts';
import { isolationError, sim } from './sim.ts';

const hex = (a: number): string => a.toString(16).padStart(16, '0');

/**
 * Rewrites the page-table entry of `va` behind the data path's back, to a new frame whose
 * shadow tags are the old frame's (so the bytes belong to the same copy, but are not the
 * bytes that were written). Returns the old frame's physical address and the new pfn.
 */
function remapBehindBack(s: ReturnType<typeof sim>, va: number): { old: number; pfn: number } {
  const r = frameLike(s, va);
  s.machine.vm.pt[r.idx] = r.pfn + 1; // no generation bump: the data path keeps the old frame
  return r;
}

/** The new frame of remapBehindBack(), tagged, and the page-table index to point at it. */
function frameLike(s: ReturnType<typeof sim>, va: number): { idx: number; old: number; pfn: number } {
  const l = readHeader(s.machine.sab);
  const tags = new Int32Array(s.machine.sab, l.shadowOffset, l.shadowEntries);
  const idx = (va - s.machine.vm.start) / PAGE_SIZE;
  const old = (s.machine.vm.pt[idx]! - 1) * PAGE_SIZE;
  const pfn = s.machine.buddy.allocPages(0);
  tags.copyWithin(pfn * PAGE_SIZE, old, old + PAGE_SIZE);
  return { idx, old, pfn };
}

describe('isolation checker', () => {
  it('allows a CPU its own copy, a declared remote write, and the static section', async () => {
    const s = sim();
    const c0 = s.cpu(0);
    const p = await c0.alloc_percpu(16, 8);
    c0.this_cpu_write(p, 5);
    c0.write(c0.this_cpu_ptr(p) + 12, 7);
    c0.per_cpu_write(p, 1, 9); // per_cpu(x, 1) = 9: declared remote
    c0.write(c0.this_cpu_ptr(s.pc.image.per_cpu_start) + 8, 1); // a static percpu variable
    expect(c0.this_cpu_read(p)).toBe(5);
    expect(s.tracker.violations).toEqual([]);
  });

  it('reaches the kernel image static variables with per_cpu(var, cpu)', () => {
    const s = sim();
    const c1 = s.cpu(1);
    // boot copied the image's initial values into every unit
    expect(c1.read(c1.per_cpu('irq_count'))).toBe(-1);
    expect(c1.read(c1.per_cpu('boot_marker', 0))).toBe(0x5045_5243);
    c1.write(c1.per_cpu('cpu_number'), 1);
    expect(c1.read(c1.per_cpu('cpu_number', 0))).toBe(0);
    expect(() => c1.per_cpu('nope')).toThrow('per_cpu: no static percpu variable "nope" in the kernel image');
  });

  it('reports a write into another CPU unit that was not declared remote', async () => {
    const s = sim();
    const c0 = s.cpu(0);
    const p = await c0.alloc_percpu(16, 8);
    const e = isolationError(() => c0.write(c0.per_cpu_ptr(p, 1), 1));
    const v = s.tracker.describe(e.fault);
    expect(v).toMatchObject({ checker: 'isolation', kind: 'foreign-unit', cpu: 0, unitCpu: 1, seed: 77 });
    expect(v.addr).toBe(c0.per_cpu_ptr(p, 1).toString(16).padStart(16, '0'));
    expect(v.allocation).toMatchObject({ id: 2, size: 16, chunk: 0, offset: 28192, cpu: 0, live: true });
    expect(v.message).toContain('foreign-unit: cpu 0 wrote 4 bytes at');
    expect(v.message).toContain("in cpu 1's copy, allocation #2 (16 bytes at chunk 0 offset 28192, made by cpu 0)");
  });

  it('reports a write to a freed area as use after free', async () => {
    const s = sim();
    const c1 = s.cpu(1);
    const p = await c1.alloc_percpu(32, 8);
    await c1.free_percpu(p);
    const v = s.tracker.describe(isolationError(() => c1.this_cpu_write(p, 3)).fault);
    expect(v).toMatchObject({
      kind: 'use-after-free',
      cpu: 1,
      unitCpu: 1,
      allocation: { id: 2, size: 32, chunk: 0, offset: 28192, live: false },
    });
  });

  it('reports a write past the end of an area as out of bounds', async () => {
    const s = sim();
    const c0 = s.cpu(0);
    const p = await c0.alloc_percpu(16, 8);
    await c0.alloc_percpu(16, 8); // a neighbour right after it
    const v = s.tracker.describe(isolationError(() => c0.write(c0.this_cpu_ptr(p) + 14, 0x01020304)).fault);
    expect(v).toMatchObject({
      kind: 'out-of-bounds',
      cpu: 0,
      unitCpu: 0,
      allocation: { id: 2, size: 16, offset: 28192 },
    });
    const w = s.tracker.describe(isolationError(() => c0.fill(c0.this_cpu_ptr(p) + 40, 1, 4)).fault);
    expect(w).toMatchObject({ kind: 'out-of-bounds', allocation: null });
  });

  it('reports a write to an unpopulated page as an oops with its address and CPU', async () => {
    const s = sim();
    const c1 = s.cpu(1);
    const p = await c1.alloc_percpu(40000, 8); // a new chunk, pages 0..9 populated
    const va = c1.this_cpu_ptr(p) + 45000; // page 10: not populated
    let err: unknown;
    try {
      c1.write(va, 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CpuFault);
    expect((err as CpuFault).message).toBe(
      `BUG: unable to handle kernel paging request at ${va.toString(16).padStart(16, '0')} (cpu 1, write: page not present)`,
    );
  });

  it('reports a new area that does not read zero (populate-no-zero)', async () => {
    const s = sim({ mutant: 'populate-no-zero' });
    const c0 = s.cpu(0);
    const p = await c0.alloc_percpu(64, 8);
    c0.fill(c0.this_cpu_ptr(p), 0xee, 64);
    await c0.free_percpu(p);
    await c0.alloc_percpu(64, 8);
    expect(s.tracker.violations[0]).toMatchObject({
      kind: 'nonzero-new-area',
      cpu: 0,
      unitCpu: 0,
      allocation: { id: 3, size: 64, chunk: 0, offset: 28192 },
    });
    expect(s.tracker.violations[0]!.message).toContain("byte 0 of cpu 0's copy is 238");
    // whose the bytes were: the freed allocation #2 in cpu 0's copy, and when its free was asked
    const freeTick = s.events.find((e) => e.type === 'arrive' && e.req.kind === 'free')!.tick;
    expect(s.tracker.violations[0]!.previous).toEqual({
      allocation: { id: 2, ptr: p, size: 64, chunk: 0, offset: 28192, cpu: 0, live: false, freedTick: freeTick },
      unitCpu: 0,
    });
  });

  it('counts violations and goes on when asked to; can be switched off', async () => {
    const s = sim({ count: true });
    const c0 = s.cpu(0);
    const p = await c0.alloc_percpu(8, 8);
    c0.write(c0.per_cpu_ptr(p, 1), 1);
    c0.write(c0.per_cpu_ptr(p, 1), 2);
    expect(c0.faults.map((f) => f.kind)).toEqual(['foreign-unit', 'foreign-unit']);
    const off = sim({ check: false }).cpu(0);
    const q = await off.alloc_percpu(8, 8);
    off.write(off.per_cpu_ptr(q, 1), 1);
    expect(off.faults).toEqual([]);
  });

  describe('through the cached fast path', () => {
    it('a hit is no longer trusted once another CPU frees the area', async () => {
      const s = sim();
      const [c0, c1] = [s.cpu(0), s.cpu(1)];
      const p = await c0.alloc_percpu(16, 8);
      for (let i = 0; i < 3; i++) c0.this_cpu_add(p, 1); // the TLB fast path, and the checker's cached run
      c0.this_cpu_write(p + 4, 5);
      expect(c0.this_cpu_read(p)).toBe(3);
      await c1.free_percpu(p);
      const where = `at ${hex(c0.this_cpu_ptr(p))} in cpu 0's copy, allocation #2 (16 bytes at chunk 0 offset 28192, made by cpu 0, freed)`;
      expect(s.tracker.describe(isolationError(() => c0.this_cpu_add(p, 1)).fault).message).toBe(
        `use-after-free: cpu 0 wrote 4 bytes ${where}: wrote an area that was freed (seed 77)`,
      );
      expect(s.tracker.describe(isolationError(() => c0.this_cpu_read(p)).fault).message).toBe(
        `use-after-free: cpu 0 read 4 bytes ${where}: read an area that was freed (seed 77)`,
      );
      expect(s.tracker.describe(isolationError(() => c0.this_cpu_write(p, 1)).fault).message).toBe(
        `use-after-free: cpu 0 wrote 4 bytes ${where}: wrote an area that was freed (seed 77)`,
      );
      expect(s.tracker.describe(isolationError(() => c0.this_cpu_write(p, 1, 2)).fault).message).toBe(
        `use-after-free: cpu 0 wrote 2 bytes ${where}: wrote an area that was freed (seed 77)`,
      );
    });

    it('a hit on the own copy does not pass a write that names another CPU, nor one past the area', async () => {
      const s = sim();
      const c0 = s.cpu(0);
      const p = await c0.alloc_percpu(16, 8);
      await c0.alloc_percpu(16, 8); // a neighbour right after it
      const va = c0.this_cpu_ptr(p);
      c0.write(va + 12, 1); // the cached run: the whole copy
      const named = s.tracker.describe(isolationError(() => c0.write(va + 4, 1, 4, 1)).fault);
      expect(named.message).toBe(
        `foreign-unit: cpu 0 wrote 4 bytes at ${hex(va + 4)} in cpu 0's copy, allocation #2 (16 bytes at chunk 0 offset 28192, made by cpu 0): cpu 0's copy, but the access named cpu 1 (seed 77)`,
      );
      c0.write(va + 12, 2);
      expect(s.tracker.describe(isolationError(() => c0.write(va + 14, 0x01020304)).fault).message).toBe(
        `out-of-bounds: cpu 0 wrote 4 bytes at ${hex(va + 14)} in cpu 0's copy, allocation #2 (16 bytes at chunk 0 offset 28192, made by cpu 0): wrote past its area (seed 77)`,
      );
    });

    it('a cached translation is not trusted after the page is unmapped and another frame mapped at the same address', async () => {
      const s = sim();
      const c1 = s.cpu(1);
      const p = await c1.alloc_percpu(40000, 8); // a new chunk in the vmalloc range
      const va = c1.this_cpu_ptr(p) + 8;
      c1.write(va, 1);
      c1.write(va, 2); // both the data path's TLB and the checker's caches hold the page
      const page = va - (va % PAGE_SIZE);
      s.machine.vm.unmapRange(page, PAGE_SIZE);
      s.machine.vm.mapPages(page, [s.machine.buddy.allocPages(0)]); // a fresh frame nobody tagged
      expect(s.tracker.describe(isolationError(() => c1.write(va, 3)).fault).message).toBe(
        `out-of-bounds: cpu 1 wrote 4 bytes at ${hex(va)} in no copy, no allocation: wrote past its area (seed 77)`,
      );
    });

    it('a hit on another CPU copy does not pass a this_cpu access that lands in it', async () => {
      const s = sim();
      const c0 = s.cpu(0);
      const p = await c0.alloc_percpu(16, 8);
      const other = c0.per_cpu_ptr(p, 1);
      c0.write(other, 1, 4, 1); // declared remote: the cached run is cpu 1's copy
      const stray = other - c0.this_cpu_ptr(0); // a pointer whose this_cpu_ptr() is cpu 1's copy
      const where = `at ${hex(other)} in cpu 1's copy, allocation #2 (16 bytes at chunk 0 offset 28192, made by cpu 0): cpu 1's copy, not declared remote (seed 77)`;
      expect(s.tracker.describe(isolationError(() => c0.this_cpu_write(stray, 2)).fault).message).toBe(
        `foreign-unit: cpu 0 wrote 4 bytes ${where}`,
      );
      expect(c0.read(other, 4, 1)).toBe(1);
      expect(s.tracker.describe(isolationError(() => c0.this_cpu_read(stray)).fault).message).toBe(
        `foreign-unit: cpu 0 read 4 bytes ${where}`,
      );
    });

    it('a hit on the own copy does not pass a read that runs past the area, aligned or not', async () => {
      const s = sim();
      const c0 = s.cpu(0);
      const p = await c0.alloc_percpu(14, 8);
      await c0.alloc_percpu(16, 8); // a neighbour two bytes after its end
      const va = c0.this_cpu_ptr(p);
      c0.write(va + 8, 0x01020304);
      expect(c0.read(va + 8, 4, 0)).toBe(0x01020304); // checked after the read, from the cached run
      expect(c0.read(va + 10, 2, 0)).toBe(0x0102);
      const area = `in cpu 0's copy, allocation #2 (14 bytes at chunk 0 offset 28192, made by cpu 0)`;
      for (const [at, width] of [
        [12, 4],
        [11, 4],
        [13, 2],
      ] as const)
        expect(s.tracker.describe(isolationError(() => c0.read(va + at, width, 0)).fault).message).toBe(
          `out-of-bounds: cpu 0 read ${width} bytes at ${hex(va + at)} ${area}: read past its area (seed 77)`,
        );
      expect(s.tracker.describe(isolationError(() => c0.read(va + 14, 2, 0)).fault).message).toBe(
        `out-of-bounds: cpu 0 read 2 bytes at ${hex(va + 14)} ${area}: read just past the end of its area (seed 77)`,
      );
    });

    type Cpu = ReturnType<ReturnType<typeof sim>['cpu']>;
    it.each([
      ['4-byte read', 4, (c: Cpu, p: number) => c.read(c.this_cpu_ptr(p), 4, 1)],
      ['2-byte read', 2, (c: Cpu, p: number) => c.read(c.this_cpu_ptr(p), 2, 1)],
      ['1-byte read', 1, (c: Cpu, p: number) => c.read(c.this_cpu_ptr(p), 1, 1)],
      ['this_cpu_read', 4, (c: Cpu, p: number) => c.this_cpu_read(p)],
    ] as const)(
      'a %s through a stale translation is reported at every read, the cached ones too',
      async (_name, width, read) => {
        const s = sim({ count: true });
        const c1 = s.cpu(1);
        const p = await c1.alloc_percpu(40000, 8);
        const va = c1.this_cpu_ptr(p);
        c1.write(va, 0x7f, width);
        expect(read(c1, p)).toBe(0x7f); // the data path and the checker both hold the page
        // the entry rewritten behind the data path's back, to a frame tagged as the same copy, whose bytes are zero
        remapBehindBack(s, va);
        // the checker walks once and caches the new frame; the second read finds its caches good and its frame not what was read
        expect([read(c1, p), read(c1, p)]).toEqual([0x7f, 0x7f]);
        const msg = `stale-translation: cpu 1 read ${width} bytes through a stale translation at ${hex(va)} in no copy, allocation #2 (40000 bytes at chunk 1 offset 0, made by cpu 1): a ${width * 8}-bit read returned 127, the frame the page table maps holds 0 (seed 77)`;
        expect(c1.faults.map((f) => s.tracker.describe(f).message)).toEqual([msg, msg]);
      },
    );

    it.each([
      ['write', (c: Cpu, p: number, v: number) => c.write(c.this_cpu_ptr(p), v)],
      ['this_cpu_write', (c: Cpu, p: number, v: number) => c.this_cpu_write(p, v)],
    ])(
      'a %s through a stale translation is reported at every write, the ones the caches pass before it too',
      async (_name, write) => {
        const s = sim({ count: true });
        const c1 = s.cpu(1);
        const p = await c1.alloc_percpu(40000, 8);
        const va = c1.this_cpu_ptr(p);
        write(c1, p, 1);
        write(c1, p, 2); // the data path and the checker both hold the page
        const { old, pfn } = remapBehindBack(s, va);
        write(c1, p, 3); // the checker walks and caches the new frame
        write(c1, p, 4); // its caches pass the write before it is made; the frame it reached is not theirs
        const msg = `stale-translation: cpu 1 wrote 4 bytes through a stale translation at ${hex(va)} in cpu 1's copy, allocation #2 (40000 bytes at chunk 1 offset 0, made by cpu 1): the access went to physical ${old.toString(16)}, the page table maps it to ${(pfn * PAGE_SIZE).toString(16)} (seed 77)`;
        expect(c1.faults.map((f) => s.tracker.describe(f).message)).toEqual([msg, msg]);
      },
    );

    it('a this_cpu_write64 that reaches another frame than the page table names is reported, cached or not', async () => {
      const s = sim({ count: true });
      const c1 = s.cpu(1);
      const p = await c1.alloc_percpu(40000, 8);
      const va = c1.this_cpu_ptr(p);
      const frame = (s.machine.vm.pt[(va - s.machine.vm.start) / PAGE_SIZE]! - 1) * PAGE_SIZE;
      c1.this_cpu_write64(p, 1n); // the checker's caches hold the page
      // a data path that stores into a frame of its own choosing
      const wrong = s.machine.buddy.allocPages(0) * PAGE_SIZE;
      c1.mem.write64 = (a: number, v: bigint): number => {
        const q = wrong + (a % PAGE_SIZE);
        c1.mem.i64[q / 8] = v;
        return q;
      };
      c1.this_cpu_write64(p, 2n);
      c1.this_cpu_write64(p, 3n);
      const msg = `stale-translation: cpu 1 wrote 8 bytes through a stale translation at ${hex(va)} in cpu 1's copy, allocation #2 (40000 bytes at chunk 1 offset 0, made by cpu 1): the access went to physical ${wrong.toString(16)}, the page table maps it to ${frame.toString(16)} (seed 77)`;
      expect(c1.faults.map((f) => s.tracker.describe(f).message)).toEqual([msg, msg]);
    });

    it('a write whose page is remapped between the check and the store is a write through a stale translation', async () => {
      const s = sim();
      const c1 = s.cpu(1);
      const p = await c1.alloc_percpu(40000, 8);
      const va = c1.this_cpu_ptr(p);
      c1.write(va, 1);
      c1.write(va, 2); // cached everywhere: the next check passes from the caches alone
      const { idx, old, pfn } = frameLike(s, va);
      // the entry rewritten after the check, before the store goes through the data path's TLB
      const mem = c1.mem;
      const store = mem.write32.bind(mem);
      mem.write32 = (a: number, v: number): number => {
        s.machine.vm.pt[idx] = pfn + 1;
        return store(a, v);
      };
      expect(s.tracker.describe(isolationError(() => c1.write(va, 3)).fault).message).toBe(
        `stale-translation: cpu 1 wrote 4 bytes through a stale translation at ${hex(va)} in cpu 1's copy, allocation #2 (40000 bytes at chunk 1 offset 0, made by cpu 1): the access went to physical ${old.toString(16)}, the page table maps it to ${(pfn * PAGE_SIZE).toString(16)} (seed 77)`,
      );
    });

    it.each([
      ['write', (c: ReturnType<ReturnType<typeof sim>['cpu']>, p: number) => c.this_cpu_write(p, 3)],
      ['this_cpu_add', (c: ReturnType<ReturnType<typeof sim>['cpu']>, p: number) => void c.this_cpu_add(p, 1)],
    ])(
      'a %s through a translation the page table changed without a generation bump is a stale translation',
      async (_name, op) => {
        const s = sim();
        const c1 = s.cpu(1);
        const p = await c1.alloc_percpu(40000, 8);
        const va = c1.this_cpu_ptr(p);
        op(c1, p);
        op(c1, p); // cached everywhere
        // the entry rewritten behind the data path's back, to a frame tagged as the same copy
        const { old, pfn } = remapBehindBack(s, va);
        expect(s.tracker.describe(isolationError(() => op(c1, p)).fault).message).toBe(
          `stale-translation: cpu 1 wrote 4 bytes through a stale translation at ${hex(va)} in cpu 1's copy, allocation #2 (40000 bytes at chunk 1 offset 0, made by cpu 1): the access went to physical ${old.toString(16)}, the page table maps it to ${(pfn * PAGE_SIZE).toString(16)} (seed 77)`,
        );
      },
    );
  });

  describe('the contents check of a byte range', () => {
    // what a data path that lost bytes on the way would leave: memory that is not what was written
    it.each([
      ['64 aligned bytes', 0, 64, 37],
      ['64 bytes at an odd address', 3, 64, 60],
      ['a range longer than the scratch copy, across a page', 1000, 6000, 5003],
      ['the same range at its last byte', 1000, 6000, 5999],
    ])('finds the first byte that differs: %s', async (_name, at, len, bad) => {
      const s = sim();
      const c1 = s.cpu(1);
      const p = await c1.alloc_percpu(8192, 8);
      const va = c1.this_cpu_ptr(p) + at;
      const data = Uint8Array.from({ length: len }, (_, i) => (i * 7 + 1) & 0xff);
      c1.writeBytes(va, data);
      const ck = new AccessChecker(s.machine.sab);
      expect(ck.checkContents(1, va, data)).toBeNull();
      const wrong = data.slice();
      wrong[bad] ^= 0x10;
      expect(ck.checkContents(1, va, wrong)).toMatchObject({
        kind: 'stale-translation',
        addr: va + bad,
        len,
        unitCpu: 1,
        detail: `byte ${bad} did not reach the frame the page table maps`,
      });
      expect(ck.checkContents(1, va, data)).toBeNull(); // the scratch copy is the caller's bytes each time
      expect(ck.checkContents(1, va + 1, data.subarray(1))).toBeNull();
    });
  });

  describe('a watched this_cpu_words view', () => {
    it('is checked when made: a view past the copy is refused as out of bounds', async () => {
      const s = sim();
      const c0 = s.cpu(0);
      const p = await c0.alloc_percpu(16, 8);
      const v = s.tracker.describe(isolationError(() => c0.this_cpu_words(p, 5)).fault);
      expect(v.message).toBe(
        `out-of-bounds: cpu 0 wrote 20 bytes at ${hex(c0.this_cpu_ptr(p))} in cpu 0's copy, allocation #2 (16 bytes at chunk 0 offset 28192, made by cpu 0): wrote past its area (seed 77)`,
      );
    });

    it('a write after another CPU frees the area is reported at the viewing CPU next call, once when counting', async () => {
      const s = sim({ count: true });
      const [c0, c1] = [s.cpu(0), s.cpu(1)];
      const p = await c0.alloc_percpu(16, 8);
      const v = c0.this_cpu_words(p, 4);
      v[1] = 3;
      await c1.free_percpu(p);
      await c0.relax(); // c0 learns of the free: the words are kept as they are now
      v[2] = 4;
      c0.finish();
      c0.finish();
      expect(c0.faults.map((f) => s.tracker.describe(f).message)).toEqual([
        `use-after-free: cpu 0 wrote 4 bytes at ${hex(c0.this_cpu_ptr(p) + 8)} in cpu 0's copy, allocation #2 (16 bytes at chunk 0 offset 28192, made by cpu 0, freed): wrote an area that was freed (seed 77)`,
      ]);
    });

    it('a write after its page is mapped to another frame is a write through a stale translation', async () => {
      const s = sim();
      const c1 = s.cpu(1);
      const p = await c1.alloc_percpu(40000, 8);
      const va = c1.this_cpu_ptr(p) + 8;
      const v = c1.this_cpu_words(p + 8, 4);
      const old =
        (s.machine.vm.pt[Math.floor((va - s.machine.vm.start) / PAGE_SIZE)]! - 1) * PAGE_SIZE + (va % PAGE_SIZE);
      const page = va - (va % PAGE_SIZE);
      s.machine.vm.unmapRange(page, PAGE_SIZE);
      const pfn = s.machine.buddy.allocPages(0);
      s.machine.vm.mapPages(page, [pfn]);
      await c1.relax();
      v[0] = 9; // the old frame
      expect(s.tracker.describe(isolationError(() => c1.finish()).fault).message).toBe(
        `stale-translation: cpu 1 wrote 4 bytes through a stale translation at ${hex(va)} in no copy, no allocation: the access went to physical ${old.toString(16)}, the page table maps it to ${(pfn * PAGE_SIZE + (va % PAGE_SIZE)).toString(16)} (seed 77)`,
      );
    });

    it('bytes that got a new owner are not compared: the new owner writes them as it likes', async () => {
      const s = sim();
      const [c0, c1] = [s.cpu(0), s.cpu(1)];
      const p = await c0.alloc_percpu(16, 8);
      c0.this_cpu_words(p, 4);
      await c1.free_percpu(p);
      await c0.relax();
      const q = await c1.alloc_percpu(16, 8);
      expect(q).toBe(p); // the same bytes, a new allocation
      c0.this_cpu_write(q, 5);
      c0.finish();
      expect(s.tracker.violations).toEqual([]);
    });
  });
});
