/**
 * The memory-management protocol checker from its books alone: an unrelated flush (another
 * vmalloc user's, aimed by a controlled run) is no bump of ours, and a fill tagged with any
 * generation but its walk's is reported whatever moved the generation.
 */
import { describe, expect, it } from 'vitest';
import { MmProtocolChecker } from '../../src/check/mm-protocol.ts';

const VA = 0x2000_0000_0000;

function checker(): { mm: MmProtocolChecker; seen: string[] } {
  const seen: string[] = [];
  const pt = new Int32Array(4);
  pt[0] = 6; // page 0 maps frame 5
  const mm = new MmProtocolChecker((v) => seen.push(`${v.kind}: ${v.message}`), pt, 0);
  return { mm, seen };
}

describe('unrelated flushes', () => {
  it('are no early bump, and a fill tagged after one is not its walk', () => {
    const { mm, seen } = checker();
    mm.foreignFlush(1);
    mm.genRead(0, 1);
    mm.walked(0);
    mm.foreignFlush(2);
    mm.genRead(0, 2);
    mm.filled(0, VA, 5, 2);
    expect(seen).toEqual([
      'tlb-fill-order: cpu 0 filled its TLB with 0x200000000000 -> frame 5 under generation 2, but the walk ran under generation 1: a translation used under a generation it was not read under',
    ]);
  });

  it("a fill tagged with its walk's generation is clean across them", () => {
    const { mm, seen } = checker();
    mm.genRead(0, 0);
    mm.walked(0);
    mm.foreignFlush(1);
    mm.filled(0, VA, 5, 0);
    mm.access(0, VA, 4, true, 0, 5);
    expect(seen).toEqual([]);
  });

  it('cover none of our unmaps', () => {
    const { mm, seen } = checker();
    mm.pteChanged(0, 5, -1);
    mm.foreignFlush(1);
    mm.framesFreed(5, 0);
    expect(seen).toEqual([
      'pte-no-bump: page-table entry 0x200000000000 changed (frame 5 unmapped) without a generation bump before the frame went back to the page allocator: a TLB may still use it',
    ]);
  });
});
