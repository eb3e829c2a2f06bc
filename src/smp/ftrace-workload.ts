/**
 * The workload behind `percpu-sim ftrace --smp`: every CPU worker issues its own CPU's traced
 * operations, and all of them in trace order. The order is kept with a sequence number in CPU
 * 0's copy of the static percpu variable ftrace_seq; the pointers allocations return are
 * shared through a table (a percpu area, CPU 0's copy) whose pointer CPU 0 publishes in
 * ftrace_table, so that a CPU can free what another allocated. Every access goes through the
 * checked per-CPU API, as declared remote accesses to CPU 0's copy.
 */
import { readFileSync } from 'node:fs';
import type { Workload } from '../api/workload.ts';
import type { PerCpu } from '../api/per-cpu.ts';

/** One traced operation, in trace order (`seq`), on the CPU that made it. */
export interface SmpOp {
  seq: number;
  cpu: number;
  kind: 'alloc' | 'free';
  /** the allocation's slot in the pointer table */
  slot: number;
  size: number;
  align: number;
  reserved: boolean;
}

export interface SmpPlan {
  ops: SmpOp[];
  /** slots allocated and never freed in the trace: CPU 0 frees them at the end */
  leftover: number[];
  slots: number;
}

export const FTRACE_VARS = [
  { name: 'ftrace_seq', size: 4, init: 0 },
  { name: 'ftrace_table', size: 8, init: 0 },
] as const;

export interface FtraceCpuResult {
  cpu: number;
  allocs: number;
  failed: number;
  frees: number;
}

/** Polls `ready` with cpu_relax() until it holds, or fails after `ms` without progress. */
async function until(cpu: PerCpu, ready: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`cpu ${cpu.cpu}: waited ${ms} ms for ${what}`);
    await cpu.relax();
  }
}

const plan = (args: Record<string, unknown>): SmpPlan => JSON.parse(readFileSync(String(args.plan), 'utf8')) as SmpPlan;

function table(cpu: PerCpu): number {
  return Number(cpu.atomic_read64(cpu.per_cpu('ftrace_table', 0), 0));
}

const ftraceReplay: Workload<FtraceCpuResult> = {
  name: 'ftrace',
  description: "a traced kernel's percpu operations, each issued by its own CPU, in trace order",
  defaults: { plan: '' },
  async run(cpu, args) {
    const p = plan(args);
    const out: FtraceCpuResult = { cpu: cpu.cpu, allocs: 0, failed: 0, frees: 0 };
    const seq = cpu.per_cpu('ftrace_seq', 0);
    const patience = Math.max(cpu.ctx.barrier_timeout_ms, 60_000);
    if (cpu.cpu === 0) {
      const t = await cpu.alloc_percpu(Math.max(8, 8 * p.slots), 8);
      if (!t) throw new Error(`cpu 0: no room for the pointer table of ${p.slots} allocations`);
      cpu.atomic_write64(cpu.per_cpu('ftrace_table', 0), BigInt(t), 0);
    }
    await until(cpu, () => table(cpu) !== 0, 'the pointer table', patience);
    const slotAt = (slot: number): number => cpu.per_cpu_ptr(table(cpu), 0) + 8 * slot;
    for (const op of p.ops) {
      if (op.cpu !== cpu.cpu) continue;
      await until(cpu, () => cpu.atomic_read(seq, 4, 0) === op.seq, `operation ${op.seq} to come up`, patience);
      if (op.kind === 'alloc') {
        const ptr = op.reserved
          ? await cpu.alloc_reserved_percpu(op.size, op.align)
          : await cpu.alloc_percpu(op.size, op.align);
        if (ptr) {
          out.allocs++;
          cpu.fill(cpu.this_cpu_ptr(ptr), cpu.cpu + 1, op.size); // the CPU uses its copy
        } else out.failed++;
        cpu.atomic_write64(slotAt(op.slot), BigInt(ptr), 0);
      } else {
        const ptr = Number(cpu.atomic_read64(slotAt(op.slot), 0));
        await cpu.free_percpu(ptr);
        cpu.atomic_write64(slotAt(op.slot), 0n, 0);
        if (ptr) out.frees++;
      }
      cpu.atomic_add(seq, 1, 4, 0);
    }
    return out;
  },
  async teardown(cpu, args) {
    const p = plan(args);
    const t = table(cpu);
    if (!t) return;
    const live = p.leftover.map((s) => Number(cpu.atomic_read64(cpu.per_cpu_ptr(t, 0) + 8 * s, 0))).filter(Boolean);
    if (live.length) await cpu.free_batch(live);
    await cpu.free_percpu(t);
  },
  verify({ results, args }) {
    const p = plan(args);
    const issued = results.reduce((n, r) => n + r.allocs + r.failed + r.frees, 0);
    const freesOfNull = p.ops.filter((o) => o.kind === 'free').length - results.reduce((n, r) => n + r.frees, 0);
    return issued + freesOfNull === p.ops.length
      ? []
      : [`${issued + freesOfNull} of ${p.ops.length} traced operations were issued`];
  },
};

export default ftraceReplay;
