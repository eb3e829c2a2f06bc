/**
 * `percpu-sim ftrace --smp`: the traced operations on the SMP machine, each issued by the
 * worker thread of the CPU that made it, in trace order, with every checker on.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FtraceEvent, FtraceOps } from '../trace/ftrace.ts';
import { FTRACE_VARS, type SmpOp, type SmpPlan } from './ftrace-workload.ts';
import { type RunReport, runWorkload } from './run.ts';

/** The most allocations one pointer table (one percpu area of PCPU_MIN_UNIT_SIZE) can follow. */
export const MAX_SMP_ALLOCATIONS = 8192;

/** The SMP plan: operations in trace order, on their CPUs, with pointer-table slots. */
export function smpPlan(ops: FtraceOps): SmpPlan {
  const slotOf = new Map<string, number>();
  const plan: SmpOp[] = [];
  let slots = 0;
  ops.sources.forEach((e: FtraceEvent, i) => {
    const line = JSON.parse(ops.lines[i + 3]!) as {
      op: string;
      id: string;
      size?: number;
      align?: number;
      reserved?: boolean;
    };
    if (line.op === 'alloc') {
      slotOf.set(line.id, slots);
      plan.push({
        seq: plan.length,
        cpu: e.cpu,
        kind: 'alloc',
        slot: slots++,
        size: line.size!,
        align: line.align!,
        reserved: line.reserved === true,
      });
    } else
      plan.push({
        seq: plan.length,
        cpu: e.cpu,
        kind: 'free',
        slot: slotOf.get(line.id)!,
        size: 0,
        align: 0,
        reserved: false,
      });
  });
  const freed = new Set(plan.filter((o) => o.kind === 'free').map((o) => o.slot));
  const leftover = plan.filter((o) => o.kind === 'alloc' && !freed.has(o.slot)).map((o) => o.slot);
  return { ops: plan, leftover, slots };
}

export interface FtraceSmpOptions {
  cpus: number;
  seed: number;
  memoryMiB: number;
  onProgress?: (phase: string, done: number, total: number) => void;
}

/** An ftrace --smp run: the run on the CPU threads, or why it could not run. */
export type FtraceSmpResult = { ops: number; report: RunReport } | { refused: string };

export async function ftraceSmp(
  _events: readonly FtraceEvent[],
  ops: FtraceOps,
  o: FtraceSmpOptions,
): Promise<FtraceSmpResult> {
  const plan = smpPlan(ops);
  if (plan.slots > MAX_SMP_ALLOCATIONS)
    return {
      refused: `the trace has ${plan.slots} allocations; --smp follows at most ${MAX_SMP_ALLOCATIONS} (replay them without --smp)`,
    };
  const dir = mkdtempSync(join(tmpdir(), 'percpu-sim-ftrace-'));
  try {
    const file = join(dir, 'plan.json');
    writeFileSync(file, JSON.stringify(plan));
    const r = await runWorkload({
      workload: fileURLToPath(
        new URL(`./ftrace-workload.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url),
      ),
      args: { plan: file },
      staticVars: [...FTRACE_VARS],
      cpus: o.cpus,
      seed: o.seed,
      memoryMiB: o.memoryMiB,
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
    return { ops: plan.ops.length, report: r };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
