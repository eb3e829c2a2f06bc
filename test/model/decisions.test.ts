/**
 * The model's decisions and the divergences it reports, one 2.6.36 rule at a time, on a
 * 4-CPU machine: 20000 static bytes, 8192 reserved, a 20960-byte dynamic area in 64 KiB
 * units, so 16 slots (wholly free chunks on slot 15, the first chunk's dynamic part on 12).
 * Each allocator mistake a run could make is fed to the apply steps and must be refused
 * with the rule it broke.
 */
import { describe, expect, it } from 'vitest';
import { blockNodes, bootFirstChunk } from '../../src/model/first-chunk.ts';
import { modelInvariants } from '../../src/model/invariants.ts';
import { Divergence, type PercpuModel, RESERVED, areasOf } from '../../src/model/percpu.ts';

function boot(slab = true, nodes = 1): PercpuModel {
  const model = bootFirstChunk({
    cpus: 4,
    cpuToNode: blockNodes(4, nodes),
    distance: null,
    staticSize: 20000,
    reservedSize: 8192,
    dynSize: 20480,
    atomSize: 4096,
    backend: 'vm',
  }).model;
  if (slab) model.applySlabOnline();
  return model;
}

/** Slot lists as "slot:[chunks]", non-empty ones only. */
const lists = (m: PercpuModel): string =>
  m.slots
    .map((l, slot) => (l.length ? `${slot}:[${l.map((c) => c.id).join(',')}]` : ''))
    .filter(Boolean)
    .join(' ');

/** The message of the Divergence `f` throws. */
function divergence(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof Divergence) return e.message;
    throw e;
  }
  throw new Error('no divergence');
}

describe('slot lists', () => {
  it('a chunk that moves up goes to the head of its new list, and the walk takes it first', () => {
    const m = boot();
    expect(m.alloc(40000, 8, false)).toEqual({ chunk: 1, off: 0 });
    expect(lists(m)).toBe('12:[0,1]'); // chunk 1 moved down from slot 15: to the tail
    expect(m.alloc(22000, 8, false)).toEqual({ chunk: 1, off: 40000 }); // chunk 0's hint is 20960
    expect(lists(m)).toBe('9:[1] 12:[0]');
    m.free(1, 40000);
    expect(lists(m)).toBe('12:[1,0]');
    const d = m.decideAlloc(100, 8, false);
    expect(d).toMatchObject({ kind: 'area', chunk: 1, off: 40000, slot: 12 });
    expect(d.rule()).toBe(
      '2.6.36 takes chunk 1 at offset 40000 (slot 12, the first chunk on the walk from slot 4 with contig_hint >= 100 and a free area for 100 bytes aligned 8; a free tail of 25436 bytes is split off)',
    );
    // an allocator that put chunk 1 at the tail would take chunk 0
    expect(divergence(() => m.applyAllocStep(7, 100, 8, false, { kind: 'area', chunk: 0, off: 28192 }))).toBe(
      `${d.rule()}; the allocator took chunk 0 at offset 28192`,
    );
  });

  it("the walk starts at the request size's slot and takes an exact fit", () => {
    const m = boot();
    expect(m.alloc(65536 - 120, 4, false)).toEqual({ chunk: 1, off: 0 });
    expect(lists(m)).toBe('4:[1] 12:[0]');
    // 120 bytes: slot 4, where chunk 1's contig_hint is exactly 120
    expect(m.decideAlloc(120, 4, false).rule()).toBe(
      '2.6.36 takes chunk 1 at offset 65416 (slot 4, the first chunk on the walk from slot 4 with contig_hint >= 120 and a free area for 120 bytes aligned 4)',
    );
    // a walk from slot 5, or one that skipped an exact fit, would have gone to chunk 0
    expect(divergence(() => m.applyAllocStep(1, 120, 4, false, { kind: 'area', chunk: 0, off: 28192 }))).toMatch(
      /^2\.6\.36 takes chunk 1 at offset 65416 .*; the allocator took chunk 0 at offset 28192$/,
    );
    expect(m.decideAlloc(121, 4, false)).toMatchObject({ kind: 'area', chunk: 0, off: 28192, slot: 12 });
  });

  it('an allocation that is not at the end leaves a stale hint; a vain search makes it exact', () => {
    const m = boot();
    const ones = Array.from({ length: 8 }, () => m.alloc(1, 1, false) as { off: number });
    expect(ones.map((o) => o.off)).toEqual([28192, 28193, 28194, 28195, 28196, 28197, 28198, 28199]);
    expect(m.alloc(20000, 1, false)).toEqual({ chunk: 0, off: 28200 });
    expect(m.alloc(952, 1, false)).toEqual({ chunk: 0, off: 48200 }); // the rest: chunk 0 is full
    for (const i of [0, 2, 4, 6]) m.free(0, ones[i]!.off); // four 1-byte holes
    m.free(0, 28200);
    expect(m.alloc(20000, 1, false)).toEqual({ chunk: 0, off: 28200 }); // not the last area
    const c0 = m.chunk(0);
    expect([c0.freeSize, c0.contigHint]).toEqual([4, 20000]); // the hint is only a hint
    expect(lists(m)).toBe('1:[0]');
    const d = m.decideAlloc(4, 1, false);
    expect(d).toMatchObject({ kind: 'create', scans: [{ chunk: 0, slot: 1, hint: 1 }] });
    expect(d.rule()).toBe(
      '2.6.36 creates a chunk: no chunk on slots 1..15 has a free area for 4 bytes aligned 1; searched in vain: chunk 0 on slot 1 (contig_hint now 1); the new chunk goes to the head of the last slot',
    );
    m.applyAllocStep('t', 4, 1, false, { kind: 'create' });
    expect(c0.contigHint).toBe(1);
    expect(lists(m)).toBe('0:[0]'); // an int does not fit any more
    expect(m.applyChunkCreated('t')).toBe(1);
    expect(lists(m)).toBe('0:[0] 15:[1]');
    expect(m.applyAllocStep('t', 4, 1, false, { kind: 'area', chunk: 1, off: 0 }).scans).toEqual([]);
    m.applyPopulated('t');
    expect(modelInvariants(m)).toEqual([]);
  });
});

describe('areas', () => {
  it('a head under an int joins the area before, a bigger one is split off, a tail under an int stays', () => {
    const m = boot();
    expect(m.alloc(5, 1, false)).toEqual({ chunk: 0, off: 28192 });
    expect(m.alloc(8, 8, false)).toEqual({ chunk: 0, off: 28200 });
    expect(areasOf(m.chunk(0)).slice(1, 4)).toEqual([
      { off: 28192, size: 8, free: false }, // took the 3-byte head
      { off: 28200, size: 8, free: false },
      { off: 28208, size: 20944, free: true },
    ]);
    expect(m.alloc(16, 64, false)).toEqual({ chunk: 0, off: 28224 });
    expect(areasOf(m.chunk(0)).slice(3, 6)).toEqual([
      { off: 28208, size: 16, free: true }, // the 16-byte head, split off
      { off: 28224, size: 16, free: false },
      { off: 28240, size: 20912, free: true },
    ]);
    expect(m.decideAlloc(20910, 1, false).rule()).toBe(
      '2.6.36 takes chunk 0 at offset 28240 (slot 12, the first chunk on the walk from slot 12 with contig_hint >= 20910 and a free area for 20910 bytes aligned 1; the 2-byte tail stays in the area)',
    );
    m.alloc(20910, 1, false);
    expect(areasOf(m.chunk(0)).at(-1)).toEqual({ off: 28240, size: 20912, free: false });
    expect([m.chunk(0).freeSize, m.chunk(0).contigHint]).toEqual([16, 16]); // the whole map was scanned
  });

  it('free merges with both neighbours and the hint grows to the merged area', () => {
    const m = boot();
    const a = m.alloc(100, 4, false) as { off: number };
    const b = m.alloc(100, 4, false) as { off: number };
    m.alloc(100, 4, false);
    m.free(0, a.off);
    m.free(0, b.off);
    expect(areasOf(m.chunk(0)).slice(1, 3)).toEqual([
      { off: 28192, size: 200, free: true },
      { off: 28392, size: 100, free: false },
    ]);
    expect(divergence(() => m.applyAreaFreed(0, b.off))).toBe(
      '2.6.36 BUG()s: chunk 0 has no area at offset 28292 (BUG_ON(off != freeme)); the allocator freed offset 28292 of chunk 0',
    );
    expect(divergence(() => m.applyAreaFreed(0, a.off))).toBe(
      '2.6.36 BUG()s: the area at offset 28192 of chunk 0 is already free (BUG_ON(chunk->map[i] > 0)); the allocator freed offset 28192 of chunk 0',
    );
  });
});

describe('the reserved chunk', () => {
  it('serves reserved requests only, and only reserved requests', () => {
    const m = boot();
    expect(m.alloc(100, 8, true)).toEqual({ chunk: RESERVED, off: 20000 });
    expect(lists(m)).toBe('12:[0]'); // on no list
    expect(m.alloc(8093, 4, true)).toEqual({ error: 'alloc from reserved chunk failed' });
    expect(m.decideAlloc(8000, 4096, true).rule()).toBe(
      '2.6.36 fails with "alloc from reserved chunk failed" (no free area of the reserved chunk holds 8000 bytes aligned 4096)',
    );
    expect(divergence(() => m.applyAllocStep(1, 8, 8, false, { kind: 'area', chunk: RESERVED, off: 20104 }))).toBe(
      '2.6.36 takes chunk 0 at offset 28192 (slot 12, the first chunk on the walk from slot 1 with contig_hint >= 8 and a free area for 8 bytes aligned 8; a free tail of 20952 bytes is split off); the allocator took the reserved chunk at offset 20104',
    );
    expect(divergence(() => m.applyAllocStep(1, 9000, 8, true, { kind: 'area', chunk: 0, off: 28192 }))).toBe(
      '2.6.36 fails with "alloc from reserved chunk failed" (contig_hint 8092 of the reserved chunk < 9000); the allocator took chunk 0 at offset 28192',
    );
  });
});

describe('maps and chunks before and after slab', () => {
  it('before slab the early map holds 127 areas and no chunk is created; after, the map doubles', () => {
    const m = boot(false);
    for (let i = 0; i < 125; i++) expect(m.alloc(4, 4, false)).toEqual({ chunk: 0, off: 28192 + 4 * i });
    expect(areasOf(m.chunk(0)).length).toBe(127);
    expect(m.decideAlloc(4, 4, false).rule()).toBe(
      '2.6.36 fails with "failed to extend area map" (chunk 0\'s map is full, and slab is not up: pcpu_mem_alloc() fails with WARN_ON_ONCE(!slab_is_available()))',
    );
    expect(m.alloc(4, 4, false)).toEqual({ error: 'failed to extend area map' });
    expect(m.alloc(4, 4, true)).toEqual({ chunk: RESERVED, off: 20000 });
    expect(m.alloc(30000, 4, false)).toEqual({ error: 'failed to allocate new chunk' });
    expect(m.log).toEqual([
      'WARNING: at mm/percpu.c pcpu_mem_alloc(): WARN_ON_ONCE(!slab_is_available())',
      'PERCPU: allocation failed, size=4 align=4, failed to extend area map',
      'PERCPU: allocation failed, size=30000 align=4, failed to allocate new chunk',
    ]);
    m.applySlabOnline();
    const d = m.decideAlloc(4, 4, false);
    expect(d).toMatchObject({ kind: 'extend', chunk: 0, to: 256 });
    expect(d.rule()).toBe(
      "2.6.36 extends chunk 0's map from 128 to 256 entries (127 used + 2 spare > 128) (slot 12, the walk from slot 1 reached it), then restarts the walk",
    );
    expect(divergence(() => m.applyAllocStep(3, 4, 4, false, { kind: 'area', chunk: 0, off: 28692 }))).toBe(
      `${d.rule()}; the allocator took chunk 0 at offset 28692`,
    );
    m.applyAllocStep(3, 4, 4, false, { kind: 'extend', chunk: 0, to: 256 });
    m.applyMapExtended(3, 0, 256);
    expect(m.applyAllocStep(3, 4, 4, false, { kind: 'area', chunk: 0, off: 28692 }).kind).toBe('area');
    m.applyPopulated(3);
    expect(m.chunk(0).mapAlloc).toBe(256);
  });

  it("a created chunk's 16-entry map is extended to 32 when 15 entries are used", () => {
    const m = boot();
    expect(m.alloc(20960, 4, false)).toEqual({ chunk: 0, off: 28192 });
    for (let i = 0; i < 14; i++) expect(m.alloc(100, 4, false)).toEqual({ chunk: 1, off: 100 * i });
    expect(areasOf(m.chunk(1)).length).toBe(15);
    const d = m.decideAlloc(100, 4, false);
    expect(d).toMatchObject({ kind: 'extend', chunk: 1, to: 32 });
    expect(d.rule()).toBe(
      "2.6.36 extends chunk 1's map from 16 to 32 entries (15 used + 2 spare > 16) (slot 13, the walk from slot 4 reached it), then restarts the walk",
    );
  });
});

describe('population', () => {
  it("each unit's new pages come from its CPU's node, and only pages not yet populated", () => {
    const m = boot(true, 2);
    m.alloc(20960, 4, false);
    m.applyAllocStep('p', 5000, 4096, false, { kind: 'create' });
    m.applyChunkCreated('p');
    m.applyAllocStep('p', 5000, 4096, false, { kind: 'area', chunk: 1, off: 0 });
    const plan = m.populatePlan(1, 0, 5000);
    expect(plan.pages.map((p) => `${p.cpu}:${p.page}:${p.node}`)).toEqual([
      '0:0:0',
      '1:0:0',
      '2:0:1',
      '3:0:1',
      '0:1:0',
      '1:1:0',
      '2:1:1',
      '3:1:1',
    ]);
    const fromNode0 = plan.pages.map((p) => ({ ...p, node: 0 }));
    expect(divergence(() => m.applyPopulated('p', fromNode0))).toBe(
      `${plan.rule()}; the allocator populated cpu 2 page 0 from node 0, cpu 3 page 0 from node 0, cpu 2 page 1 from node 0, cpu 3 page 1 from node 0 but not cpu 2 page 0 from node 1, cpu 3 page 0 from node 1, cpu 2 page 1 from node 1, cpu 3 page 1 from node 1`,
    );
    m.applyPopulated('p', plan.pages);
    expect(m.populatePlan(1, 4096, 5000).pages.map((p) => p.page)).toEqual([2, 2, 2, 2]);
  });

  it('a failed population gives the area back and prints why', () => {
    const m = boot();
    expect(m.alloc(40000, 8, false, { populate: () => false })).toEqual({ error: 'failed to populate' });
    expect(areasOf(m.chunk(1))).toEqual([{ off: 0, size: 65536, free: true }]);
    expect(m.chunk(1).populated.includes(true)).toBe(false);
    expect(lists(m)).toBe('12:[0] 15:[1]');
    expect(m.log).toEqual(['PERCPU: allocation failed, size=40000 align=8, failed to populate']);
  });
});

describe('reclaim', () => {
  it('destroys every wholly free chunk but the first on the last slot, the last one first', () => {
    const m = boot();
    const areas = [1, 2, 3].map(() => m.alloc(40000, 8, false) as { chunk: number; off: number });
    expect(areas.map((a) => a.chunk)).toEqual([1, 2, 3]);
    expect(m.applyAreaFreed(1, 0)).toBe(false); // the only wholly free chunk
    expect(m.applyAreaFreed(3, 0)).toBe(true); // chunk 3 joins chunk 1 on slot 15, at its head
    expect(lists(m)).toBe('12:[0,2] 15:[3,1]');
    expect(divergence(() => m.applyAreaFreed(2, 0, false))).toBe(
      '2.6.36 schedules pcpu_reclaim: chunk 2 is wholly free and another chunk is on the last slot; the allocator did not',
    );
  });

  it('the pass takes them off the lists; destruction follows under pcpu_alloc_mutex', () => {
    const m = boot();
    for (let i = 0; i < 3; i++) m.alloc(40000, 8, false);
    for (const id of [1, 3, 2]) m.applyAreaFreed(id, 0);
    expect(lists(m)).toBe('12:[0] 15:[2,3,1]');
    expect(divergence(() => m.applyReclaimPass([3, 1]))).toBe(
      '2.6.36 reclaims chunk 1, chunk 3 (every chunk on the last slot but the first of its list, the last one first); the allocator reclaimed chunk 3, chunk 1',
    );
    expect(m.applyReclaimPass([1, 3])).toEqual([1, 3]);
    expect(lists(m)).toBe('12:[0] 15:[2]');
    expect(divergence(() => m.applyAllocStep(5, 8, 8, false, { kind: 'area', chunk: 0, off: 28192 }))).toBe(
      'pcpu_reclaim holds pcpu_alloc_mutex until it has destroyed chunk 1, chunk 3; the allocator walked the slot lists for 8 bytes (task 5)',
    );
    expect(divergence(() => m.applyChunkDestroyed(3))).toBe(
      '2.6.36 destroys chunk 1 next; the allocator destroyed chunk 3',
    );
    const pages = Array.from({ length: 40 }, (_, i) => ({ cpu: i % 4, page: Math.floor(i / 4) }));
    expect(divergence(() => m.applyChunkDestroyed(1, pages.slice(4)))).toBe(
      '2.6.36 frees every populated page of chunk 1 in every unit; the allocator freed the right pages but not cpu 0 page 0, cpu 1 page 0, cpu 2 page 0, cpu 3 page 0',
    );
    expect(m.applyChunkDestroyed(1, pages).length).toBe(10 * 4); // the ten pages of 40000 bytes, in each of four units
    m.applyChunkDestroyed(3);
    expect([...m.chunks.keys()]).toEqual([-1, 0, 2]);
    expect(m.applyAllocStep(5, 8, 8, false, { kind: 'area', chunk: 0, off: 28192 }).kind).toBe('area');
  });
});

describe('pcpu_alloc_mutex and the lifecycle', () => {
  it('one allocation at a time, and reclaim waits for it', () => {
    const m = boot();
    m.alloc(20960, 4, false);
    m.applyAllocStep(1, 64, 8, false, { kind: 'create' });
    expect(divergence(() => m.applyAllocStep(2, 32, 8, false, { kind: 'create' }))).toBe(
      "task 1's allocation of 64 bytes holds pcpu_alloc_mutex; the allocator walked the slot lists for 32 bytes (task 2)",
    );
    expect(divergence(() => m.applyReclaimPass([]))).toBe(
      "task 1's allocation of 64 bytes holds pcpu_alloc_mutex; the allocator ran pcpu_reclaim",
    );
    // an illegal request returns before taking the mutex
    const illegal = 'illegal size (0) or align (8) for percpu allocation';
    expect(m.applyAllocStep(2, 0, 8, false, { kind: 'fail', reason: illegal }).rule()).toBe(
      `2.6.36 fails with "${illegal}" (size must be 1..65536 and align 1..4096)`,
    );
    expect(divergence(() => m.applyChunkCreated(1, 2))).toBe(
      '2.6.36 numbers the new chunk 1 (chunks are numbered in creation order); the allocator numbered it 2',
    );
    m.applyChunkCreated(1, 1);
    m.applyAllocStep(1, 64, 8, false, { kind: 'area', chunk: 1, off: 0 });
    expect(divergence(() => m.applyAllocFailed(1, 'failed to allocate new chunk'))).toBe(
      '2.6.36 fails this populate with "failed to populate"; the allocator failed with "failed to allocate new chunk"',
    );
    m.applyPopulated(1);
    expect(m.log).toEqual([`WARNING: ${illegal}`]);
  });

  it('slab comes online once, percpu_init_late runs once after it, and must run', () => {
    const m = boot(false);
    expect(divergence(() => m.applyInitLate())).toBe(
      'percpu_init_late() needs slab: pcpu_mem_alloc() fails and BUG_ON(!map) fires; the allocator ran it before',
    );
    m.applySlabOnline();
    expect(divergence(() => m.applySlabOnline())).toBe('slab comes online once; the allocator brought it online again');
    expect(m.lateInitMissing()).toBe(
      'slab came online but percpu_init_late() never ran: the first chunk still uses its __initdata map',
    );
    m.applyInitLate();
    expect([m.chunk(0).earlyMap, m.chunk(RESERVED).earlyMap, m.lateInitMissing()]).toEqual([false, false, null]);
    expect(divergence(() => m.applyInitLate())).toBe(
      'percpu_init_late() runs once (it is __init); the allocator ran it again',
    );
  });
});
