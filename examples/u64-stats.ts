/**
 * Per-CPU 64-bit statistics summed by a remote reader, in the kernel's idiom (the network
 * stack's per-CPU byte and packet counters, include/linux/u64_stats_sync.h): every CPU adds
 * to its own 64-bit counter, and every CPU now and then sums all of them.
 *
 * On a 64-bit machine a 64-bit load or store is one instruction and nothing more is needed.
 * On a 32-bit one (`--word 32`) it is two, and a reader can see the low half of one value and
 * the high half of another: a torn read. The writer's sequence count (odd while it updates)
 * lets the reader notice and read again. Run it controlled, so that the scheduler can stop a
 * CPU between the two halves:
 *
 *   percpu-sim run u64-stats --controlled --word 32 --arg sync=false   # torn, reported
 *   percpu-sim run u64-stats --controlled --word 32                    # clean
 */
import type { PerCpu, Workload } from 'percpu-sim';

interface StatsResult {
  ptr: number;
  updates: number;
  /** values this CPU read whose halves disagree (each update adds 1 to both halves) */
  torn: number;
}

/** Each update adds one to both 32-bit halves: a value whose halves differ was read torn. */
const DELTA = 0x1_0000_0001n;
/** The counter, then the sequence count, in one 16-byte area. */
const SEQ = 8;

function readStats(cpu: PerCpu, ptr: number, c: number, sync: boolean): bigint {
  if (!sync) return cpu.per_cpu_read64(ptr, c);
  let v: bigint;
  let start: number;
  do {
    start = cpu.u64_stats_fetch_begin(ptr + SEQ, c);
    v = cpu.per_cpu_read64(ptr, c);
  } while (cpu.u64_stats_fetch_retry(ptr + SEQ, c, start));
  return v;
}

const u64stats: Workload<StatsResult> = {
  name: 'u64-stats',
  description: 'per-CPU 64-bit counters summed by remote readers, torn on a 32-bit machine without u64_stats_sync',
  defaults: { updates: 200, readEvery: 10, sync: true },
  async early(cpu) {
    const ptr = await cpu.alloc_percpu(16, 8);
    if (!ptr) throw new Error(`alloc_percpu failed: ${cpu.lastError}`);
    return ptr;
  },
  async run(cpu, args, early) {
    const ptr = early as number;
    const sync = args.sync === true;
    const updates = Number(args.updates);
    let torn = 0;
    await cpu.barrier();
    for (let i = 1; i <= updates; i++) {
      if (sync) cpu.u64_stats_update_begin(ptr + SEQ);
      cpu.this_cpu_write64(ptr, cpu.this_cpu_read64(ptr) + DELTA);
      if (sync) cpu.u64_stats_update_end(ptr + SEQ);
      if (i % Number(args.readEvery) === 0)
        for (let c = 0; c < cpu.nr_cpus; c++) {
          const v = readStats(cpu, ptr, c, sync);
          if (v >> 32n !== (v & 0xffff_ffffn)) torn++;
        }
    }
    await cpu.barrier();
    return { ptr, updates, torn };
  },
  verify({ results, nr_cpus, access, per_cpu_ptr }) {
    const failures: string[] = [];
    for (let c = 0; c < nr_cpus; c++) {
      const r = results[c]!;
      const v = access.read64(per_cpu_ptr(r.ptr, c));
      if (v !== BigInt(r.updates) * DELTA)
        failures.push(`cpu ${c}'s counter holds ${v}, expected ${BigInt(r.updates) * DELTA}`);
      if (r.torn) failures.push(`cpu ${c} read ${r.torn} torn value(s)`);
    }
    return failures;
  },
  async teardown(cpu, _args, early) {
    await cpu.free_percpu(early as number);
  },
};

export default u64stats;
