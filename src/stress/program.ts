/**
 * What each CPU does in a stress run, from its own seeded PRNG: allocate areas of random
 * size and alignment (some from the reserved chunk), stamp its own copy, re-stamp, check and
 * free them at random. Every write goes through the checked per-CPU API. A stamp that does
 * not read back is data corruption.
 */
import type { PerCpu } from '../../workers/cpu-api.ts';

export type SizeMix = 'small' | 'mixed' | 'large';

export interface StressArgs {
  /** operations per CPU */
  ops: number;
  /** percent of operations that allocate (when under maxLive) */
  allocPct: number;
  /** percent of allocations that ask for the reserved chunk */
  reservedPct: number;
  sizes: SizeMix;
  /** alignments are 2^0 .. 2^maxAlignShift */
  maxAlignShift: number;
  /** live areas per CPU at most */
  maxLive: number;
}

export const DEFAULT_STRESS_ARGS: StressArgs = { ops: 2000, allocPct: 55, reservedPct: 3, sizes: 'mixed', maxAlignShift: 6, maxLive: 40 };

export interface StressCpuResult {
  cpu: number;
  allocs: number;
  failed: number;
  frees: number;
  checks: number;
}

interface Area {
  ptr: number;
  size: number;
  stamp: number;
}

/** Data corruption: a CPU's own copy does not hold what it wrote. */
export class CorruptionError extends Error {
  override readonly name = 'CorruptionError';
  readonly code = 'CORRUPTION';
}

/** The run was stopped (a violation elsewhere): give up quietly. */
export class StopError extends Error {
  override readonly name = 'StopError';
}

const stampByte = (cpu: number, stamp: number, i: number): number => ((cpu + 1) * 31 + stamp * 7 + i * 13) & 0xff || 0x5a;

function pickSize(cpu: PerCpu, mix: SizeMix): number {
  const r = cpu.prng.float();
  if (mix === 'small') return cpu.prng.int(1, 64);
  if (mix === 'large') return cpu.prng.int(1024, 32768);
  return r < 0.8 ? cpu.prng.int(1, 256) : r < 0.98 ? cpu.prng.int(257, 4096) : cpu.prng.int(4097, 16384);
}

function stampArea(cpu: PerCpu, a: Area): void {
  const bytes = new Uint8Array(a.size);
  for (let i = 0; i < a.size; i++) bytes[i] = stampByte(cpu.cpu, a.stamp, i);
  cpu.writeBytes(cpu.this_cpu_ptr(a.ptr), bytes);
}

function checkArea(cpu: PerCpu, a: Area): void {
  const got = cpu.bytes(cpu.this_cpu_ptr(a.ptr), a.size);
  for (let i = 0; i < a.size; i++)
    if (got[i] !== stampByte(cpu.cpu, a.stamp, i))
      throw new CorruptionError(`cpu ${cpu.cpu}: byte ${i} of its copy of area ${a.ptr.toString(16)} (+${a.size}) reads ${got[i]}, wrote ${stampByte(cpu.cpu, a.stamp, i)}`);
}

export async function stressCpu(cpu: PerCpu, args: StressArgs, stopped: () => boolean = () => false): Promise<StressCpuResult> {
  const out: StressCpuResult = { cpu: cpu.cpu, allocs: 0, failed: 0, frees: 0, checks: 0 };
  const live: Area[] = [];
  const rng = cpu.prng;
  for (let op = 0; op < args.ops; op++) {
    if (stopped()) throw new StopError('stopped');
    const r = rng.int(0, 99);
    if (live.length < args.maxLive && (r < args.allocPct || live.length === 0)) {
      const size = pickSize(cpu, args.sizes);
      const align = 1 << rng.int(0, args.maxAlignShift);
      const reserved = rng.int(0, 99) < args.reservedPct;
      const ptr = reserved ? await cpu.alloc_reserved_percpu(Math.min(size, 512), align) : await cpu.alloc_percpu(size, align);
      if (!ptr) {
        out.failed++;
        continue;
      }
      out.allocs++;
      const a = { ptr, size: reserved ? Math.min(size, 512) : size, stamp: op };
      stampArea(cpu, a);
      live.push(a);
    } else if (r < args.allocPct + 10) {
      const a = live[rng.int(0, live.length - 1)]!;
      checkArea(cpu, a);
      a.stamp = op;
      stampArea(cpu, a);
      out.checks++;
    } else {
      const a = live.splice(rng.int(0, live.length - 1), 1)[0]!;
      checkArea(cpu, a);
      out.checks++;
      await cpu.free_percpu(a.ptr);
      out.frees++;
    }
  }
  for (const a of live) checkArea(cpu, a);
  if (live.length) await cpu.free_batch(live.map((a) => a.ptr));
  out.frees += live.length;
  return out;
}
