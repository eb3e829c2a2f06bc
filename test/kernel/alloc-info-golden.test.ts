/**
 * pcpu_build_alloc_info() and the boot lines, against real dmesg samples: the same static,
 * reserved and dynamic sizes, atom size and CPU grouping must print the same lines (the
 * address aside). The kernel's group lines end in a space; ours do too.
 */
import { describe, expect, it } from 'vitest';
import { pcpu_alloc_alloc_info, pcpu_build_alloc_info, pcpu_dump_alloc_info } from '../../src/kernel/alloc-info.ts';
import { NR_CPUS } from '../../src/kernel/constants.ts';
import { makeKernelImage } from '../../src/kernel/image.ts';
import { boot } from '../helpers.ts';

const MB2 = 2 << 20;

describe('pcpu_build_alloc_info golden lines', () => {
  it('2.6.32, 2 CPUs, 2 MiB atom: two units share one allocation', () => {
    const ai = pcpu_build_alloc_info(2, 91544, 8192, 20480, MB2, null);
    expect(pcpu_dump_alloc_info(ai, 2)).toEqual([
      'pcpu-alloc: s91544 r8192 d23144 u1048576 alloc=1*2097152',
      'pcpu-alloc: [0] 0 1 ',
    ]);
  });

  it('NUMA guest: 4 CPUs on 2 nodes, two groups of two', () => {
    const dist = (a: number, b: number): number => (a >> 1 === b >> 1 ? 10 : 20);
    const ai = pcpu_build_alloc_info(4, 274432, 8192, 28672, MB2, dist);
    expect(ai.nr_groups).toBe(2);
    expect(pcpu_dump_alloc_info(ai, 4)).toEqual([
      'pcpu-alloc: s274432 r8192 d28672 u1048576 alloc=1*2097152',
      'pcpu-alloc: [0] 0 1 [1] 2 3 ',
    ]);
  });

  it('arm64, page atom: one unit per allocation', () => {
    const ai = pcpu_build_alloc_info(4, 82280, 8192, 28672, 4096, null);
    expect(pcpu_dump_alloc_info(ai, 4)).toEqual([
      'pcpu-alloc: s82280 r8192 d32408 u122880 alloc=30*4096',
      'pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 ',
    ]);
  });

  it('UP with percpu-km: a hand-built single unit', () => {
    const ai = pcpu_alloc_alloc_info(1, 1);
    Object.assign(ai, { dyn_size: 32768, unit_size: 32768, atom_size: 32768, alloc_size: 32768 });
    ai.groups[0]!.nr_units = 1;
    ai.groups[0]!.cpu_map[0] = 0;
    expect(pcpu_dump_alloc_info(ai, 1)).toEqual([
      'pcpu-alloc: s0 r0 d32768 u32768 alloc=1*32768',
      'pcpu-alloc: [0] 0 ',
    ]);
  });

  it('prints the embed line with the page count and the sizes', () => {
    const { pc } = boot({ image: makeKernelImage(91544), dyn_size: 20480, atom_size: MB2 }, { cpus: 2 }, false);
    expect(pc.dmesg[0]).toMatch(/^PERCPU: Embedded 30 pages\/cpu @[0-9a-f]{16} s91544 r8192 d23144 u1048576$/);
  });
});

describe('grouping and padding', () => {
  it('pads groups with NR_CPUS holes and prints them as dashes', () => {
    // 3 CPUs, 2 MiB atom: upa 4 (512 KiB units) wastes 1 unit, which is within 3/3, and
    // needs one allocation; upa 2 would need two. So one unit of the allocation is empty.
    const ai = pcpu_build_alloc_info(3, 91544, 8192, 20480, MB2, null);
    expect(ai.unit_size).toBe(524288);
    expect(ai.groups[0]!.cpu_map).toEqual([0, 1, 2, NR_CPUS]);
    expect(pcpu_dump_alloc_info(ai, 3)).toEqual([
      'pcpu-alloc: s91544 r8192 d23144 u524288 alloc=1*2097152',
      'pcpu-alloc: [0] 0 1 2 - ',
    ]);
  });

  it('refuses an upa that wastes more than a third of the CPUs', () => {
    // 2 CPUs in 2 groups (remote): upa 2 would waste 2 units > 2/3, so upa is 1
    const ai = pcpu_build_alloc_info(2, 91544, 8192, 20480, MB2, (a, b) => (a === b ? 10 : 20));
    expect(ai.nr_groups).toBe(2);
    expect(ai.unit_size).toBe(MB2);
    expect(ai.groups.map((g) => g.cpu_map)).toEqual([[0], [1]]);
  });

  it('breaks group lines every 2^k allocations that fit in 60 columns', () => {
    const ai = pcpu_build_alloc_info(20, 20000, 8192, 20480, 4096, null);
    const lines = pcpu_dump_alloc_info(ai, 20);
    // width = 1 * (2 + 1) + 1 + 3 = 7 -> 60 / 7 = 8 allocations per line
    expect(lines.slice(1)).toEqual([
      'pcpu-alloc: [0] 00 [0] 01 [0] 02 [0] 03 [0] 04 [0] 05 [0] 06 [0] 07 ',
      'pcpu-alloc: [0] 08 [0] 09 [0] 10 [0] 11 [0] 12 [0] 13 [0] 14 [0] 15 ',
      'pcpu-alloc: [0] 16 [0] 17 [0] 18 [0] 19 ',
    ]);
  });
});
