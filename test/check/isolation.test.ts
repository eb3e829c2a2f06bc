/**
 * The isolation checker: each kind of violation, committed on purpose by a small workload,
 * is reported with the kind, the CPU, the address, the allocation (id, size, chunk, offset),
 * the CPU whose unit was hit, and the seed.
 */
import { describe, expect, it } from 'vitest';
import { CpuFault } from '../../src/api/per-cpu.ts';
import { isolationError, sim } from './sim.ts';

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
});
