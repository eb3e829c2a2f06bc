/**
 * The buddy page allocator: no page is handed out twice, freeing everything coalesces back
 * to the boot state, and the accounting is exact after every step.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BuddyAllocator } from '../../src/mem/buddy.ts';
import { MemError } from '../../src/mem/errors.ts';
import { PhysMem } from '../../src/mem/phys.ts';
import { Prng } from '../../src/util/prng.ts';

function fresh(nodes = 1, mib = 4): BuddyAllocator {
  const mem = PhysMem.create({ memoryBytes: mib << 20, nodes, shadow: false, vmallocBytes: 1 << 20 });
  const b = new BuddyAllocator(mem);
  b.addRange(0, mem.nrPages);
  return b;
}

describe('buddy allocator', () => {
  it('starts as maximal aligned blocks', () => {
    const b = fresh();
    // 4 MiB = 1024 pages = one order-10 block
    expect(b.buddyinfo(0)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(b.totalFree()).toBe(1024);
  });

  it('splits the smallest block that fits and gives the upper halves back', () => {
    const b = fresh();
    expect(b.allocPagesNode(0, 0)).toBe(0);
    expect(b.buddyinfo(0)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(b.allocPagesNode(0, 2)).toBe(4);
    expect(b.allocPagesNode(0, 0)).toBe(1);
    b.freePages(1, 0);
    b.freePages(4, 2);
    b.freePages(0, 0);
    expect(b.buddyinfo(0)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  it('falls back to the nearest other node', () => {
    const b = fresh(2, 8);
    const pages = b.mem.nodeEndPfn(0);
    for (let i = 0; i < pages / 1024; i++) expect(b.allocPagesNode(0, 10)).toBeGreaterThanOrEqual(0);
    expect(b.nrFree[0]).toBe(0);
    const p = b.allocPagesNode(0, 0);
    expect(b.mem.pfnToNid(p)).toBe(1);
  });

  it('refuses bad calls, naming the argument, and changes nothing', () => {
    const b = fresh();
    const before = b.snapshot();
    expect(() => b.allocPagesNode(0, 11)).toThrow('alloc_pages_node: order must be in [0, 10], got 11');
    expect(() => b.allocPagesNode(3, 0)).toThrow('alloc_pages_node: node must be in [0, 0], got 3');
    expect(() => b.freePages(5, 0)).toThrow(/pfn 5 is not the start of an allocated block/);
    const p = b.allocPagesNode(0, 1);
    const mid = b.snapshot();
    expect(() => b.freePages(p, 0)).toThrow(`__free_pages: order 0 does not match the allocated order 1 of pfn ${p}`);
    expect(() => b.freePages(-1, 0)).toThrow(MemError);
    expect(b.snapshot()).toEqual(mid);
    b.freePages(p, 1);
    expect(() => b.freePages(p, 1)).toThrow(/double free/);
    expect(b.snapshot()).toEqual(before);
  });

  it('fails the Nth call, or a seeded fraction of calls, when told to', () => {
    const b = fresh();
    b.setFaultInjection({ failNth: 3 });
    expect([b.allocPages(0), b.allocPages(0), b.allocPages(0), b.allocPages(0)].map((p) => p >= 0)).toEqual([
      true,
      true,
      false,
      true,
    ]);
    const run = (seed: number) => {
      const c = fresh();
      c.setFaultInjection({ failRate: 0.5, prng: new Prng(seed) });
      return Array.from({ length: 20 }, () => c.allocPages(0) >= 0);
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7).filter((x) => !x).length).toBeGreaterThan(3);
  });

  it('property: random allocations and frees keep exact accounting and coalesce fully', () => {
    const step = fc.oneof(
      fc.record({ a: fc.constant(true as const), node: fc.nat(1), order: fc.integer({ min: 0, max: 10 }) }),
      fc.record({ a: fc.constant(false as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const b = fresh(2, 8);
        const boot = b.snapshot();
        const owned = new Map<number, number>(); // pfn -> order
        const pages = new Set<number>();
        for (const s of steps) {
          if (s.a) {
            const p = b.allocPagesNode(s.node, s.order);
            if (p < 0) continue;
            for (let q = p; q < p + (1 << s.order); q++) {
              expect(pages.has(q)).toBe(false); // never handed out twice
              pages.add(q);
            }
            owned.set(p, s.order);
          } else if (owned.size) {
            const [p, o] = [...owned][s.pick % owned.size]!;
            b.freePages(p, o);
            owned.delete(p);
            for (let q = p; q < p + (1 << o); q++) pages.delete(q);
          }
          expect(b.totalFree()).toBe(2048 - pages.size);
          expect(b.audit()).toEqual([]);
        }
        for (const [p, o] of owned) b.freePages(p, o);
        expect(b.snapshot()).toEqual(boot);
      }),
      { numRuns: 80, seed: 42 },
    );
  });
});
