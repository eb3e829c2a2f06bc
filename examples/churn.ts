/**
 * Churn: every CPU allocates areas of random sizes and alignments, stamps its own copy with
 * a pattern, checks and frees them at random, all from a seed. Before freeing, a CPU checks
 * every unit of its area: its own copy must hold its pattern, every other CPU's copy must
 * still read zero. Allocations from all CPUs race through the allocator actor while the data
 * writes go straight to shared memory.
 */
import type { PerCpu, Workload } from 'percpu-sim';

interface ChurnResult {
  allocs: number;
  failed: number;
  frees: number;
  checked: number;
  mismatches: string[];
}

interface Area {
  ptr: number;
  size: number;
  stamp: number;
}

/** The byte this CPU writes at position i of an area with this stamp. */
const patternByte = (cpu: number, stamp: number, i: number): number => (cpu * 67 + stamp * 13 + i * 7 + 1) & 0xff || 1;

function check(cpu: PerCpu, a: Area, out: ChurnResult): void {
  for (let c = 0; c < cpu.nr_cpus; c++) {
    const got = cpu.bytes(cpu.per_cpu_ptr(a.ptr, c), a.size);
    for (let i = 0; i < a.size; i++) {
      const want = c === cpu.cpu ? patternByte(cpu.cpu, a.stamp, i) : 0;
      if (got[i] !== want) {
        out.mismatches.push(
          `cpu ${cpu.cpu}: area ${a.ptr.toString(16)} (+${a.size}) unit of cpu ${c} byte ${i} is ${got[i]}, expected ${want}`,
        );
        break;
      }
    }
  }
  out.checked++;
}

const churn: Workload<ChurnResult> = {
  name: 'churn',
  description: 'every CPU allocates, writes its pattern, checks every unit and frees, at random from a seed',
  defaults: { ops: 400, maxLive: 24, maxSize: 3000 },
  async run(cpu, args) {
    const out: ChurnResult = { allocs: 0, failed: 0, frees: 0, checked: 0, mismatches: [] };
    const live: Area[] = [];
    const rng = cpu.prng;
    for (let op = 0; op < Number(args.ops); op++) {
      if (live.length && (live.length >= Number(args.maxLive) || rng.chance(0.45))) {
        const a = live.splice(rng.int(0, live.length - 1), 1)[0]!;
        check(cpu, a, out);
        await cpu.free_percpu(a.ptr);
        out.frees++;
        continue;
      }
      const size = rng.chance(0.8) ? rng.int(1, 128) : rng.int(129, Number(args.maxSize));
      const align = 1 << rng.int(0, 6);
      const ptr = await cpu.alloc_percpu(size, align);
      if (!ptr) {
        out.failed++;
        continue;
      }
      out.allocs++;
      const a = { ptr, size, stamp: op };
      const mine = cpu.this_cpu_ptr(ptr);
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = patternByte(cpu.cpu, a.stamp, i);
      cpu.writeBytes(mine, bytes);
      live.push(a);
    }
    for (const a of live) check(cpu, a, out);
    await cpu.free_batch(live.map((a) => a.ptr));
    out.frees += live.length;
    return out;
  },
  verify({ results }) {
    const failures = results.flatMap((r) => r.mismatches.slice(0, 5));
    results.forEach((r, c) => {
      if (r.allocs !== r.frees) failures.push(`cpu ${c} made ${r.allocs} allocations but freed ${r.frees}`);
      if (r.checked !== r.allocs) failures.push(`cpu ${c} checked ${r.checked} of ${r.allocs} areas`);
    });
    return failures;
  },
};

export default churn;
