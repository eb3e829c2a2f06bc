/**
 * The data path, one operation at a time: each per-CPU data operation through the API with the
 * isolation check off and on, against the same access made straight on the SharedArrayBuffer's
 * typed arrays (the frame of this CPU's copy). Each column runs in a thread of its own
 * (bench/dataops-worker.ts), so neither pollutes the other's JIT feedback; the columns of a
 * row are measured alternating, after a warm-up, best of three. Prints; asserts nothing.
 */
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../src/smp/worker-url.ts';

interface Timing {
  raw: number;
  api: number;
  faults: number;
}

export async function benchDataOps(): Promise<void> {
  console.log('dataops: each data operation, raw SAB access / unchecked API / checked API (ns per operation)');
  const e = workerEntry('bench/dataops-worker');
  /** a worker and the reply it owes: one message in flight at a time */
  const start = (check: boolean): { w: Worker; next: () => Promise<unknown> } => {
    const w = new Worker(e.url, { argv: e.argv, workerData: { check } });
    let waiting: { res: (m: unknown) => void; rej: (e: Error) => void } | null = null;
    w.on('message', (m) => waiting?.res(m));
    w.on('error', (err) => waiting?.rej(err));
    const next = (): Promise<unknown> => new Promise((res, rej) => (waiting = { res, rej }));
    return { w, next };
  };
  const off = start(false);
  const on = start(true);
  const first = [off.next(), on.next()];
  const names = ((await first[0]) as { names: string[] }).names;
  await first[1];
  const time = (x: { w: Worker; next: () => Promise<unknown> }, k: number): Promise<Timing> => {
    const r = x.next() as Promise<Timing>;
    x.w.postMessage(k);
    return r;
  };
  const f = (x: number): string => x.toFixed(1).padStart(8);
  const r = (x: number): string => `${x.toFixed(1)}x`.padStart(9);
  console.log(
    `  ${'operation'.padEnd(32)} ${'raw'.padStart(8)} ${'uncheck'.padStart(8)} ${'checked'.padStart(8)} ${'unch/raw'.padStart(9)} ${'chk/raw'.padStart(9)} ${'chk/unch'.padStart(9)}`,
  );
  let faults = 0;
  for (let k = 0; k < names.length; k++) {
    let raw = Infinity;
    let a = Infinity;
    let b = Infinity;
    await time(off, k); // warm both
    await time(on, k);
    for (let i = 0; i < 3; i++) {
      const x = await time(off, k);
      const y = await time(on, k);
      raw = Math.min(raw, x.raw, y.raw);
      a = Math.min(a, x.api);
      b = Math.min(b, y.api);
      faults += x.faults + y.faults;
    }
    console.log(`  ${names[k]!.padEnd(32)} ${f(raw)} ${f(a)} ${f(b)} ${r(a / raw)} ${r(b / raw)} ${r(b / a)}`);
  }
  if (faults) console.log(`  (${faults} unexpected faults)`);
  await off.w.terminate();
  await on.w.terminate();
}
