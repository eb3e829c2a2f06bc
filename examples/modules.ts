/**
 * Module load and unload (seed 000): a module's static percpu section is allocated from the
 * reserved chunk, right after the kernel's own, with __alloc_reserved_percpu(), and the
 * loader copies its initial values into every CPU's copy (percpu_modcopy: remote writes,
 * declared as such). Several CPUs load and unload modules at once; the reserved chunk must
 * serve them all without ever falling back to a dynamic chunk, and a load that does not fit
 * fails cleanly ("alloc from reserved chunk failed"), as insmod would.
 */
import type { Workload } from 'percpu-sim';

interface ModuleStats {
  loads: number;
  unloads: number;
  full: number;
  chunks: number[];
}

const modules: Workload<ModuleStats> = {
  name: 'modules',
  description: 'modules with static percpu sections loaded and unloaded concurrently from the reserved chunk',
  defaults: { loads: 60, maxSection: 1500 },
  async run(cpu, args) {
    const out: ModuleStats = { loads: 0, unloads: 0, full: 0, chunks: [] };
    const loaded: { ptr: number; size: number; seed: number }[] = [];
    const rng = cpu.prng;
    for (let i = 0; i < Number(args.loads); i++) {
      if (loaded.length && rng.chance(0.45)) {
        const m = loaded.splice(rng.int(0, loaded.length - 1), 1)[0]!;
        // the module's own code checks its variables before it goes away
        for (let c = 0; c < cpu.nr_cpus; c++) {
          const b = cpu.bytes(cpu.per_cpu_ptr(m.ptr, c), m.size);
          if (b[0] !== (m.seed & 0xff) || b[m.size - 1] !== ((m.seed + c) & 0xff))
            throw new Error(`cpu ${cpu.cpu}: module section at ${m.ptr.toString(16)} lost its data on cpu ${c}`);
        }
        await cpu.free_percpu(m.ptr);
        out.unloads++;
        continue;
      }
      const size = rng.int(16, Number(args.maxSection));
      const ptr = await cpu.alloc_reserved_percpu(size, 8);
      if (!ptr) {
        if (cpu.lastError !== 'alloc from reserved chunk failed')
          throw new Error(`unexpected load failure: ${cpu.lastError}`);
        out.full++;
        continue;
      }
      const seed = cpu.cpu * 1000 + i;
      for (let c = 0; c < cpu.nr_cpus; c++) {
        // percpu_modcopy(): the loader fills every possible CPU's copy
        const init = new Uint8Array(size);
        init[0] = seed & 0xff;
        init[size - 1] = (seed + c) & 0xff;
        cpu.writeBytes(cpu.per_cpu_ptr(ptr, c), init, true);
      }
      loaded.push({ ptr, size, seed });
      out.loads++;
    }
    await cpu.free_batch(loaded.map((m) => m.ptr));
    out.unloads += loaded.length;
    return out;
  },
  verify({ results, dmesg }) {
    const failures: string[] = [];
    const loads = results.reduce((a, r) => a + r.loads, 0);
    if (!loads) failures.push('no module was loaded');
    results.forEach(
      (r, c) => r.loads !== r.unloads && failures.push(`cpu ${c} loaded ${r.loads} modules and unloaded ${r.unloads}`),
    );
    if (
      dmesg.some(
        (l) =>
          l.includes('failed') &&
          !l.includes('alloc from reserved chunk failed') &&
          l.startsWith('PERCPU: allocation failed'),
      )
    )
      failures.push('a module load failed for a reason other than a full reserved chunk');
    return failures;
  },
};

export default modules;
