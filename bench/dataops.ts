/**
 * The data path, one operation at a time: each per-CPU data operation through the API with the
 * isolation check off and on, against the same access made straight on the SharedArrayBuffer's
 * typed arrays (the frame of this CPU's copy). Each column runs in a thread of its own
 * (bench/dataops-worker.ts), so neither pollutes the other's JIT feedback; the columns of a
 * row are measured alternating, after a warm-up, best of five. Prints; asserts nothing.
 */
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
    for (let i = 0; i < 5; i++) {
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

/**
 * Whole commands: `run counter` (this_cpu_inc in a loop) and `run bench/workloads/view.ts`
 * (`v[i & 15] += 1` on a this_cpu_words view), 2 CPUs, PCPU_BENCH_DATA_N iterations on each
 * (default 2*10^7), with checking and with --no-check, alternating, best of three wall times.
 */
export function benchDataRuns(): void {
  const n = Number(process.env.PCPU_BENCH_DATA_N ?? 2e7);
  console.log(
    `dataops: whole runs on 2 CPUs, ${n} operations each, checked against --no-check (best of 3 alternating)`,
  );
  const bin = fileURLToPath(new URL('../../bin/percpu-sim.mjs', import.meta.url));
  const view = fileURLToPath(new URL('../../bench/workloads/view.ts', import.meta.url));
  const runs: [string, string[]][] = [
    [`run counter --arg adds=${n}`, ['run', 'counter', '--cpus', '2', '--arg', `adds=${n}`]],
    [`run view.ts --arg n=${n}`, ['run', view, '--cpus', '2', '--arg', `n=${n}`]],
  ];
  for (const [name, args] of runs) {
    const wall = (extra: string[]): number => {
      const t = performance.now();
      const r = spawnSync(process.execPath, [bin, ...args, ...extra], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`percpu-sim ${[...args, ...extra].join(' ')} exited ${r.status}`);
      return (performance.now() - t) / 1000;
    };
    let off = Infinity;
    let on = Infinity;
    for (let i = 0; i < 3; i++) {
      off = Math.min(off, wall(['--no-check']));
      on = Math.min(on, wall([]));
    }
    console.log(
      `  ${name.padEnd(36)} checked ${on.toFixed(2)} s   --no-check ${off.toFixed(2)} s   ratio ${(on / off).toFixed(2)}`,
    );
  }
}
