/** Shared set-up for the tests: a booted allocator on a small machine. */
import { expect } from 'vitest';
import { checkAllocator, checkPageAccounting } from '../src/check/allocator.ts';
import { Machine, type MachineConfig } from '../src/mem/machine.ts';
import type { PcpuChunk } from '../src/kernel/chunk.ts';
import type { Percpu } from '../src/kernel/percpu.ts';
import { type PercpuSetup, mm_init, setup_per_cpu_areas } from '../src/kernel/setup.ts';
import { runSync } from '../src/sim/drive-sync.ts';

export interface Booted {
  m: Machine;
  pc: Percpu;
}

/** Boots a machine; with `slab`, also runs mm_init() and percpu_init_late(). */
export function boot(setup: PercpuSetup = {}, machine: MachineConfig = {}, slab = true): Booted {
  const m = new Machine({ cpus: 4, memoryBytes: 32 << 20, shadow: false, ...machine });
  const pc = setup_per_cpu_areas(m, { static_size: 20000, reserved_size: 8192, dyn_size: 20480, ...setup });
  if (slab) {
    mm_init(m, pc);
    runSync(pc, pc.percpu_init_late());
  }
  return { m, pc };
}

/** alloc through the synchronous driver; returns [chunk id, offset] or the error. */
export function alloc(pc: Percpu, size: number, align: number, reserved = false) {
  return runSync(pc, reserved ? pc.__alloc_reserved_percpu(size, align) : pc.__alloc_percpu(size, align));
}

export function free(pc: Percpu, ptr: number): PcpuChunk | null {
  return runSync(pc, pc.free_percpu(ptr));
}

/** Asserts that every allocator invariant and the page accounting hold. */
export function expectConsistent(pc: Percpu): void {
  expect(checkAllocator(pc)).toEqual([]);
  expect(checkPageAccounting(pc)).toBeNull();
}

/** A chunk's map, for readable assertions. */
export function mapOf(c: PcpuChunk | null | undefined): number[] {
  return c ? c.mapEntries() : [];
}
