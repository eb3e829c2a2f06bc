/**
 * The first chunk: pcpu_embed_first_chunk() over boot memory (with sparse NUMA groups, seed
 * 002), pcpu_page_first_chunk() over vmalloc, and pcpu_setup_first_chunk()'s sanity checks.
 */
import { describe, expect, it } from 'vitest';
import { pcpu_alloc_alloc_info } from '../../src/kernel/alloc-info.ts';
import { KernelBug } from '../../src/kernel/bug.ts';
import { makeKernelImage } from '../../src/kernel/image.ts';
import { Percpu } from '../../src/kernel/percpu.ts';
import { makeBackend } from '../../src/kernel/setup.ts';
import { Machine } from '../../src/mem/machine.ts';
import { PAGE_OFFSET, PAGE_SIZE } from '../../src/mem/layout.ts';
import { alloc, boot, expectConsistent } from '../helpers.ts';

describe('pcpu_embed_first_chunk', () => {
  it('copies the static section into every unit and gives the unit tails back', () => {
    const { m, pc } = boot({}, {}, false);
    for (let cpu = 0; cpu < 4; cpu++) {
      const unit = pc.pcpu_base_addr + pc.pcpu_unit_offsets[cpu]!;
      expect(m.access.readBytes(unit, 20000)).toEqual(pc.image.load);
    }
    // 4 units of 64 KiB were taken; all but the first 12 pages of each went back
    const reserved = m.memblock.reservedRanges();
    expect(reserved).toEqual([0, 1, 2, 3].map((u) => ({ start: u * 65536, end: u * 65536 + 49152 })));
  });

  it('places each NUMA group in its own node and records sparse group offsets', () => {
    const { m, pc } = boot({ numa_groups: true }, { cpus: 4, nodes: 2, memoryBytes: 64 << 20 }, false);
    expect(pc.pcpu_nr_groups).toBe(2);
    // node 1 starts at 32 MiB: the second group sits that far from the base
    expect(pc.pcpu_group_offsets).toEqual([0, 32 << 20]);
    expect(pc.pcpu_unit_offsets).toEqual([0, 65536, 32 << 20, (32 << 20) + 65536]);
    for (let cpu = 0; cpu < 4; cpu++) {
      const phys = pc.per_cpu_ptr_to_phys(pc.pcpu_base_addr + pc.pcpu_unit_offsets[cpu]!);
      expect(m.mem.pfnToNid(phys / PAGE_SIZE)).toBe(m.cpuToNode(cpu));
    }
    expect(pc.dmesg).toContain('pcpu-alloc: [0] 0 [0] 1 [1] 2 [1] 3 ');
  });

  it('backs dynamic chunks of NUMA machines with node-local pages', () => {
    const { m, pc } = boot({ numa_groups: true }, { cpus: 4, nodes: 2, memoryBytes: 64 << 20 });
    const r = alloc(pc, 40000, 8);
    expect(r.chunk!.id).toBe(1);
    for (let cpu = 0; cpu < 4; cpu++) {
      const phys = pc.per_cpu_ptr_to_phys(pc.per_cpu_ptr(r.ptr, cpu));
      expect(m.mem.pfnToNid(Math.floor(phys / PAGE_SIZE))).toBe(m.cpuToNode(cpu));
    }
    expectConsistent(pc);
  });
});

describe('pcpu_page_first_chunk', () => {
  it('maps the first chunk page by page into vmalloc space', () => {
    const { m, pc } = boot({ fc: 'page' }, {}, false);
    expect(pc.dmesg[0]).toMatch(/^PERCPU: 16 4K pages\/cpu @[0-9a-f]{16} s20000 r8192 d12768$/);
    expect(m.vm.isVmallocAddr(pc.pcpu_base_addr)).toBe(true);
    const unit2 = pc.pcpu_base_addr + pc.pcpu_unit_offsets[2]!;
    expect(m.access.readBytes(unit2, 20000)).toEqual(pc.image.load);
    const a = alloc(pc, 64, 8);
    expect([a.chunk!.id, a.off]).toEqual([0, 28192]);
  });
});

describe('pcpu_setup_first_chunk sanity checks', () => {
  const fresh = (backend: 'vm' | 'km' = 'vm') => {
    const m = new Machine({ cpus: 2, shadow: false });
    const pc = new Percpu({ machine: m, image: makeKernelImage(20000), backend: makeBackend(backend) });
    const ai = pcpu_alloc_alloc_info(1, 2);
    Object.assign(ai, {
      static_size: 20000,
      reserved_size: 8192,
      dyn_size: 20960,
      unit_size: 65536,
      atom_size: 4096,
      alloc_size: 65536,
    });
    ai.groups[0]!.nr_units = 2;
    ai.groups[0]!.cpu_map = [0, 1];
    return { pc, ai };
  };
  const check = (
    mutate: (ai: ReturnType<typeof fresh>['ai']) => void,
    base: number,
    what: string,
    backend: 'vm' | 'km' = 'vm',
  ) => {
    const { pc, ai } = fresh(backend);
    mutate(ai);
    let err: unknown;
    try {
      pc.pcpu_setup_first_chunk(ai, base);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelBug);
    expect((err as KernelBug).code).toBe('PCPU_SETUP_BUG_ON');
    expect((err as KernelBug).check).toBe(what);
    expect(pc.dmesg).toContain(`PERCPU: failed to initialize, ${what}`);
    expect(pc.is_setup).toBe(false);
  };

  it('names each failed check', () => {
    check(() => {}, 0, '!base_addr');
    check(() => {}, PAGE_OFFSET + 8, '(unsigned long)base_addr & ~PAGE_MASK');
    check((ai) => (ai.static_size = 0), PAGE_OFFSET, '!ai->static_size');
    check((ai) => (ai.dyn_size = 50000), PAGE_OFFSET, 'ai->unit_size < size_sum');
    check((ai) => (ai.unit_size = 65536 + 100), PAGE_OFFSET, 'ai->unit_size & ~PAGE_MASK');
    check((ai) => Object.assign(ai, { unit_size: 49152 }), PAGE_OFFSET, 'ai->unit_size < PCPU_MIN_UNIT_SIZE');
    check((ai) => (ai.dyn_size = 4096), PAGE_OFFSET, 'ai->dyn_size < PERCPU_DYNAMIC_EARLY_SIZE');
    check((ai) => (ai.groups[0]!.cpu_map = [0, 0]), PAGE_OFFSET, 'unit_map[cpu] != UINT_MAX');
    check((ai) => (ai.groups[0]!.cpu_map = [0, 7]), PAGE_OFFSET, 'cpu > nr_cpu_ids');
    check((ai) => (ai.nr_groups = 0), PAGE_OFFSET, 'ai->nr_groups <= 0');
    check(
      (ai) => {
        ai.nr_groups = 2;
        ai.groups = [
          { nr_units: 1, base_offset: 0, cpu_map: [0] },
          { nr_units: 1, base_offset: 65536, cpu_map: [1] },
        ];
      },
      PAGE_OFFSET,
      'pcpu_verify_alloc_info(ai) < 0',
      'km',
    );
  });

  it('refuses a CPU that no unit serves', () => {
    const { pc, ai } = fresh();
    ai.groups[0]!.cpu_map = [0, 4096];
    expect(() => pc.pcpu_setup_first_chunk(ai, PAGE_OFFSET)).toThrow(
      'PERCPU: failed to initialize, unit_map[cpu] == UINT_MAX',
    );
  });
});
