/**
 * pcpu_populate_chunk()'s BUG_ON: the clear of a new area (fillUnits) faults exactly when some
 * CPU's unit of the area is not mapped (vm) or not backed (km), and names that CPU, on a
 * machine with contents and on one without, for the first, a middle and the last CPU.
 */
import { describe, expect, it } from 'vitest';
import { KernelBug } from '../../src/kernel/bug.ts';
import { PAGE_SIZE } from '../../src/kernel/constants.ts';
import { runSync } from '../../src/sim/drive-sync.ts';
import { alloc, boot } from '../helpers.ts';

const bugOf = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    if (!(e instanceof KernelBug)) throw e;
    return `${e.code}: ${e.message}`;
  }
};

describe('pcpu_populate_chunk BUG_ON', () => {
  for (const contents of [true, false])
    for (const cpus of contents ? [4] : [4, 64])
      it(`vm, ${cpus} CPUs, contents ${contents}: names the one CPU whose unit lost a page of the area`, () => {
        for (const victim of [0, cpus >> 1, cpus - 1]) {
          const { m, pc } = boot({ backend: 'vm' }, { cpus, contents, memoryBytes: contents ? 32 << 20 : 1 << 30 });
          // a new chunk; the first area takes pages 0..7 of each unit
          const a = alloc(pc, 30000, 16);
          expect([a.chunk!.id, a.off]).toEqual([1, 0]);
          // page 7 stays populated for the chunk, but one CPU's copy is unmapped
          m.vm.unmapRange(pc.pcpu_chunk_addr(a.chunk!, victim, 7), PAGE_SIZE);
          // the next area (30000..59999) spans pages 7..14: only 8..14 are mapped now
          expect(bugOf(() => alloc(pc, 30000, 16))).toBe(
            `BUG_ON: pcpu_populate_chunk: chunk 1 offset 30000 is not mapped for cpu ${victim}`,
          );
        }
      });

  it('vm: no BUG_ON when every unit is whole (the area crossing page boundaries)', () => {
    for (const contents of [true, false]) {
      const { pc } = boot({ backend: 'vm' }, { cpus: 8, contents, memoryBytes: contents ? 64 << 20 : 1 << 30 });
      for (const size of [30000, 4095, 4097, 8192, 1]) expect(bugOf(() => alloc(pc, size, 1))).toBeNull();
    }
  });

  for (const contents of [true, false])
    it(`km, contents ${contents}: names the one CPU whose unit is not backed`, () => {
      for (const victim of [0, 2, 3]) {
        const { m, pc } = boot({ backend: 'km' }, { cpus: 4, contents });
        const a = alloc(pc, 30000, 16);
        expect(a.chunk!.id).toBe(1);
        // the victim's unit moved (for the test) past the end of physical memory
        const saved = pc.pcpu_unit_offsets[victim]!;
        pc.pcpu_unit_offsets[victim] = m.mem.nrPages * PAGE_SIZE * 4;
        try {
          expect(bugOf(() => runSync(pc, pc.backend.pcpu_populate_chunk(a.chunk!, 30000, 100)))).toBe(
            `BUG_ON: pcpu_populate_chunk: chunk 1 offset 30000 is not backed for cpu ${victim}`,
          );
        } finally {
          pc.pcpu_unit_offsets[victim] = saved;
        }
        expect(bugOf(() => runSync(pc, pc.backend.pcpu_populate_chunk(a.chunk!, 30000, 100)))).toBeNull();
      }
    });
});
