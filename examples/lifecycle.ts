/**
 * The boot lifecycle, step by step. Before slab is online the boot CPU allocates from the
 * first chunk's 128-entry __initdata map until it runs out (the kernel's warning, then
 * "failed to extend area map"), and a request too big for the first chunk cannot create a
 * chunk ("failed to allocate new chunk"). After slab online and percpu_init_late(), the same
 * requests succeed, and every CPU allocates from the chunks that now can be made.
 */
import type { Workload } from 'percpu-sim';

interface Early {
  small: number[];
  smallFailure: string | null;
  bigFailure: string | null;
}

interface Late {
  cpu: number;
  retriedBig: number;
  chunkMade: boolean;
  small: number;
}

const lifecycle: Workload<Late> = {
  name: 'lifecycle',
  description: 'early allocations until the early budget runs out, then slab online and late init',
  defaults: { big: 30000 },
  config: {
    // every CPU's big area has a copy on every CPU, at once: cpus² of them
    memoryMiB: ({ cpus, args }) => 64 + (1.5 * cpus * cpus * (Math.ceil(Number(args.big) / 4096) + 1)) / 256,
  },
  async early(cpu, args): Promise<Early> {
    const small: number[] = [];
    let smallFailure: string | null = null;
    for (;;) {
      const p = await cpu.alloc_percpu(4, 4);
      if (!p) {
        smallFailure = cpu.lastError;
        break;
      }
      small.push(p);
    }
    const big = await cpu.alloc_percpu(Number(args.big), 8);
    return { small, smallFailure, bigFailure: big ? null : cpu.lastError };
  },
  async run(cpu, args) {
    const big = await cpu.alloc_percpu(Number(args.big), 8);
    const small = await cpu.alloc_percpu(4, 4);
    await cpu.barrier();
    const out = { cpu: cpu.cpu, retriedBig: big, chunkMade: big !== 0, small };
    await cpu.free_batch([big, small]);
    return out;
  },
  verify({ results, early, dmesg }) {
    const e = early as Early;
    const failures: string[] = [];
    if (e.small.length !== 125)
      failures.push(
        `early map served ${e.small.length} 4-byte allocations, expected 125 (128 entries, two spare, one for the static head)`,
      );
    if (e.smallFailure !== 'failed to extend area map') failures.push(`early small failure was "${e.smallFailure}"`);
    if (e.bigFailure !== 'failed to allocate new chunk') failures.push(`early big failure was "${e.bigFailure}"`);
    if (!dmesg.some((l) => l.includes('WARN_ON_ONCE(!slab_is_available())')))
      failures.push('no slab_is_available() warning in the log');
    for (const r of results)
      if (!r.chunkMade || !r.small) failures.push(`cpu ${r.cpu}: allocation after late init failed`);
    return failures;
  },
  async teardown(cpu, _args, early) {
    await cpu.free_batch((early as Early).small);
  },
};

export default lifecycle;
