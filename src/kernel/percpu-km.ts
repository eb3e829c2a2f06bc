/**
 * mm/percpu-km.c (2010): every chunk is one contiguous block from the page allocator, used
 * through the direct map. Chunks are fully populated when they are made, so populate only
 * clears the new area and depopulate does nothing. One group only; a chunk whose size is
 * not a power of two pages wastes the rest of its block.
 */
import { MAX_ORDER } from '../mem/layout.ts';
import type { PcpuAllocInfo, PcpuBackend } from './percpu-internal.ts';
import { KernelBug } from './bug.ts';
import type { PcpuChunk } from './chunk.ts';
import { PAGE_SIZE, order_base_2, roundup_pow_of_two } from './constants.ts';
import type { Percpu } from './percpu.ts';
import { type KTask, sleepStep } from './steps.ts';

export class PercpuKm implements PcpuBackend {
  readonly name = 'km' as const;

  constructor(private readonly pc: Percpu) {}

  *pcpu_populate_chunk(chunk: PcpuChunk, off: number, size: number): KTask<number> {
    this.pc.pcpu_chunk_check_alive(chunk, 'pcpu_populate_chunk');
    if (this.pc.mutant('populate-no-zero')) return 0;
    const nr_zeroed = this.pc.nr_cpu_ids - (this.pc.mutant('populate-zeroes-short') ? 1 : 0);
    // memset() of the area in each possible CPU's unit
    const cpu = this.pc.machine.access.fillUnits(chunk.base_addr + off, this.pc.pcpu_unit_offsets, nr_zeroed, 0, size);
    if (cpu >= 0)
      throw new KernelBug(
        'BUG_ON',
        `pcpu_populate_chunk: chunk ${chunk.id} offset ${off} is not backed for cpu ${cpu}`,
      );
    return 0;
  }

  *pcpu_depopulate_chunk(_chunk: PcpuChunk, _off: number, _size: number): KTask<void> {
    // nothing to give back: the block goes with the chunk
  }

  *pcpu_create_chunk(): KTask<PcpuChunk | null> {
    const pc = this.pc;
    const m = pc.machine;
    const nr_pages = pc.pcpu_group_sizes[0]! / PAGE_SIZE;
    const order = order_base_2(nr_pages);
    const chunk = pc.pcpu_alloc_chunk();
    if (!chunk) return null;
    yield sleepStep('pcpu_create_chunk', -1);
    if (order >= MAX_ORDER) {
      pc.WARN(`at mm/page_alloc.c: alloc_pages(order ${order}) is beyond MAX_ORDER`);
      pc.pcpu_free_chunk(chunk);
      return null;
    }
    const pfn = m.buddy.allocPages(order);
    if (pfn < 0) {
      pc.pcpu_free_chunk(chunk);
      return null;
    }
    pc.WRITE('vm', chunk, 'pcpu_create_chunk');
    chunk.data = pfn;
    chunk.base_addr = m.mem.va(pfn * PAGE_SIZE) - pc.pcpu_group_offsets[0]!;
    pc.WRITE('populated', chunk, 'pcpu_create_chunk');
    chunk.populated.fill(1);
    pc.pcpu_register_chunk(chunk);
    for (let i = 0; i < pc.pcpu_unit_pages; i++) pc.WRITE('page', chunk, 'pcpu_create_chunk', i);
    for (let i = 0; i < nr_pages; i++) m.mem.setPageChunk(pfn + i, chunk.id);
    for (let cpu = 0; cpu < pc.nr_cpu_ids; cpu++) {
      const first = pfn + (pc.pcpu_unit_offsets[cpu]! - pc.pcpu_group_offsets[0]!) / PAGE_SIZE;
      for (let i = 0; i < pc.pcpu_unit_pages; i++) m.mem.setPageCpu(first + i, cpu);
    }
    return chunk;
  }

  *pcpu_destroy_chunk(chunk: PcpuChunk): KTask<void> {
    const pc = this.pc;
    const m = pc.machine;
    const nr_pages = pc.pcpu_group_sizes[0]! / PAGE_SIZE;
    pc.WRITE('vm', chunk, 'pcpu_destroy_chunk');
    if (typeof chunk.data === 'number') {
      for (let i = 0; i < 1 << order_base_2(nr_pages); i++) {
        m.mem.setPageChunk(chunk.data + i, -1);
        m.mem.setPageCpu(chunk.data + i, -1);
      }
      m.buddy.freePages(chunk.data, order_base_2(nr_pages));
    }
    chunk.data = null;
    pc.pcpu_free_chunk(chunk);
    pc.pcpu_unregister_chunk(chunk);
    chunk.destroyed = true;
  }

  pcpu_addr_to_pfn(addr: number): number {
    const phys = addr - this.pc.machine.mem.va(0);
    return phys >= 0 && phys < this.pc.machine.mem.layout.memoryBytes ? Math.floor(phys / PAGE_SIZE) : -1;
  }

  pcpu_verify_alloc_info(ai: PcpuAllocInfo): number {
    if (ai.nr_groups !== 1) {
      this.pc.printk("percpu: can't handle more than one groups");
      return -22;
    }
    const nr_pages = (ai.groups[0]!.nr_units * ai.unit_size) / PAGE_SIZE;
    const alloc_pages = roundup_pow_of_two(nr_pages);
    if (alloc_pages > nr_pages) this.pc.printk(`percpu: wasting ${alloc_pages - nr_pages} pages per chunk`);
    return 0;
  }
}
