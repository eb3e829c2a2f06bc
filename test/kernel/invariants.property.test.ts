/**
 * Property: under any sequence of allocations and frees, on either backend, with or without
 * injected page-allocation failures, every allocator invariant holds after every operation,
 * no page leaks, and freeing everything leaves only the one spared empty chunk's pages.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkAllocator, checkPageAccounting } from '../../src/check/allocator.ts';
import { Prng } from '../../src/util/prng.ts';
import { alloc, boot, free } from '../helpers.ts';

const op = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      size: fc.oneof(
        { weight: 5, arbitrary: fc.integer({ min: 1, max: 256 }) },
        { weight: 1, arbitrary: fc.integer({ min: 257, max: 40000 }) },
      ),
      alignShift: fc.integer({ min: 0, max: 12 }),
      reserved: fc.boolean(),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
);

for (const backend of ['vm', 'km'] as const) {
  describe(`allocator invariants (${backend})`, () => {
    it('hold after every operation, and no page leaks', () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 120 }), fc.integer({ min: 0, max: 3 }), (ops, failPct) => {
          const { m, pc } = boot({ backend }, { memoryBytes: 16 << 20 });
          const bootFree = m.buddy.totalFree();
          if (failPct) m.buddy.setFaultInjection({ failRate: failPct / 20, prng: new Prng(failPct) });
          const live: number[] = [];
          for (const o of ops) {
            if (o.kind === 'alloc') {
              const r = alloc(pc, o.size, 1 << o.alignShift, o.reserved);
              if (r.ptr) live.push(r.ptr);
              else
                expect(r.error).toMatch(
                  /^(failed to populate|failed to allocate new chunk|alloc from reserved chunk failed)$/,
                );
            } else if (live.length) {
              free(pc, live.splice(o.pick % live.length, 1)[0]!);
            }
            expect(checkAllocator(pc)).toEqual([]);
            expect(checkPageAccounting(pc)).toBeNull();
          }
          m.buddy.setFaultInjection({});
          for (const p of live) free(pc, p);
          expect(checkAllocator(pc)).toEqual([]);
          expect(pc.stats.nr_cur_alloc).toBe(0);
          // at most one empty chunk is spared by reclaim; nothing else holds pages
          expect(pc.chunks.size).toBeLessThanOrEqual(2);
          let held = 0;
          for (const c of pc.chunks.values())
            if (!c.immutable) held += c.populated.reduce((a, b) => a + b, 0) * (backend === 'vm' ? 4 : 0);
          if (backend === 'km') held = (pc.chunks.size - 1) * 64;
          expect(bootFree - m.buddy.totalFree()).toBe(held);
          expect(m.buddy.audit()).toEqual([]);
        }),
        { numRuns: 60, seed: 0x5eed },
      );
    });
  });
}
