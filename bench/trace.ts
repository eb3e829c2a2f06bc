/**
 * Random replay traces shaped like the acceptance workload: sizes mostly 1-256 bytes with a
 * tail up to 32 KiB, alignments of 1-64, a free ratio drifting between 30% and 55%, and a few
 * hundred thousand areas live at the end.
 */
import { Prng } from '../src/util/prng.ts';

export function randomTrace(ops: number, seed: number, freeLo = 0.3, freeHi = 0.55): string {
  const rng = new Prng(seed);
  const out: string[] = [
    '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}',
    '{"op":"slab_online"}',
    '{"op":"init_late"}',
  ];
  const live: number[] = [];
  let next = 0;
  for (let i = 0; i < ops; i++) {
    const freeRatio = freeLo + (freeHi - freeLo) * ((i / ops) * 2 > 1 ? 2 - (i / ops) * 2 : (i / ops) * 2);
    if (live.length && rng.chance(freeRatio)) {
      const k = rng.int(0, live.length - 1);
      const id = live[k]!;
      live[k] = live[live.length - 1]!;
      live.pop();
      out.push(`{"op":"free","id":"a${id}"}`);
    } else {
      const r = rng.float();
      const size = r < 0.9 ? rng.int(1, 256) : r < 0.99 ? rng.int(257, 4096) : rng.int(4097, 32768);
      const align = 1 << rng.int(0, 6);
      const id = next++;
      live.push(id);
      out.push(`{"op":"alloc","id":"a${id}","size":${size},"align":${align}}`);
    }
  }
  return out.join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(
    randomTrace(
      Number(process.argv[2] ?? 1e6),
      Number(process.argv[3] ?? 1),
      Number(process.argv[4] ?? 0.3),
      Number(process.argv[5] ?? 0.55),
    ),
  );
}
