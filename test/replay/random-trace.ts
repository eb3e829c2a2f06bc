/**
 * The random traces the differential tests replay: early boot (before slab_online), the
 * reserved chunk, reclaim, map extension, illegal requests, tails and heads of every size,
 * several CPU counts, NUMA groups and large atoms. A trace is a function of its seed.
 */
import { Prng } from '../../src/util/prng.ts';

export function randomTrace(seed: number, ops: number): string {
  const r = new Prng(seed);
  const cpus = r.pick([1, 2, 3, 4, 8]);
  // never more nodes than CPUs, which the format refuses
  const nodes = cpus > 1 && r.chance(0.3) ? Math.min(cpus, r.pick([2, 4])) : 1;
  const atom = r.chance(0.2) ? 1 << 21 : 4096;
  const reserved = r.chance(0.7) ? r.pick([4096, 8192, 12288]) : 0;
  const lines = [
    `{"op":"boot","static_size":${r.int(4000, 90000)},"reserved_size":${reserved},"dyn_size":${r.pick([0, 8192, 20480, 30000])},"cpus":${cpus},"nodes":${nodes},"atom_size":${atom}}`,
  ];
  const live: string[] = [];
  const slabAt = r.int(0, Math.floor(ops / 4));
  const maxSize = r.pick([64, 512, 4096, 40000]);
  let n = 0;
  for (let i = 0; i < ops; i++) {
    if (i === slabAt) lines.push('{"op":"slab_online"}');
    if (i === slabAt + 5) lines.push('{"op":"init_late"}');
    if (live.length && r.chance(0.42)) {
      const k = r.int(0, live.length - 1);
      lines.push(`{"op":"free","id":"${live[k]}"}`);
      live.splice(k, 1);
    } else {
      const id = `x${n++}`;
      const size = r.chance(0.02)
        ? r.pick([0, 65537])
        : r.chance(0.9)
          ? r.int(1, Math.min(maxSize, 300))
          : r.int(1, maxSize);
      // now and then an alignment that is not a power of two: 2.6.36 rounds it with ALIGN()'s mask
      const align = r.chance(0.01) ? 8192 : r.chance(0.03) ? r.int(1, 200) : 1 << r.int(0, r.chance(0.1) ? 12 : 6);
      const res = r.chance(0.08) ? ',"reserved":true' : '';
      lines.push(`{"op":"alloc","id":"${id}","size":${size},"align":${align}${res}}`);
      live.push(id);
    }
  }
  return lines.join('\n') + '\n';
}
