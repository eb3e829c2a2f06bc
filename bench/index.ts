/**
 * Benchmarks. Figures are printed with a baseline measured in the same run and their ratio;
 * nothing here asserts a timing. Run all with `npm run bench`, or some: `npm run bench -- mem`.
 */
import { Worker } from 'node:worker_threads';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/mem/machine.ts';
import { PAGE_SIZE } from '../src/mem/layout.ts';
import { Replayer, replayText } from '../src/trace/replay.ts';
import { workerEntry } from '../src/smp/worker-url.ts';
import { Prng } from '../src/util/prng.ts';
import { randomTrace } from './trace.ts';
import { SHAPES, UNSEEN } from './shapes.ts';
import { benchSmp } from './smp.ts';
import { benchCheck } from './check.ts';
import { benchDataOps, benchDataRuns } from './dataops.ts';
import { benchScale } from './scale.ts';
import { benchControlled } from './controlled.ts';
import { benchCoverage, benchPolicies } from './policies.ts';

const fmt = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(1);
function row(name: string, value: number, unit: string, baseline?: { name: string; value: number }): void {
  const base = baseline
    ? `   baseline ${baseline.name}: ${fmt(baseline.value)}${unit}   ratio ${(value / baseline.value).toFixed(2)}`
    : '';
  console.log(`  ${name.padEnd(44)} ${fmt(value).padStart(10)}${unit}${base}`);
}
function time<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const r = fn();
  return [r, (performance.now() - t) / 1000];
}

async function benchMem(): Promise<void> {
  console.log('mem: page allocator and translated writes');
  const m = new Machine({ memoryBytes: 256 << 20, shadow: false });
  m.mmInit();
  const N = 400_000;
  // the same random walk for both, each run warm and best of three, alternating
  const buddyRun = (): number => {
    const rng = new Prng(1);
    const live: number[] = [];
    const [, secs] = time(() => {
      for (let i = 0; i < N; i++) {
        if (live.length > 2000 || (live.length && rng.chance(0.5))) {
          const k = rng.int(0, live.length - 1);
          const p = live[k]!;
          live[k] = live[live.length - 1]!;
          live.pop();
          m.buddy.freePages(p >> 4, p & 15);
        } else {
          const o = rng.int(0, 3);
          live.push((m.buddy.allocPagesNode(0, o) << 4) | o);
        }
      }
    });
    for (const p of live) m.buddy.freePages(p >> 4, p & 15);
    return secs;
  };
  // baseline: a bare free-list stack of single pages (the cheapest page allocator there is)
  const stack = new Int32Array(65536).map((_, i) => i);
  let top = stack.length;
  const stackRun = (): number => {
    const rng2 = new Prng(1);
    const held: number[] = [];
    const [, base] = time(() => {
      for (let i = 0; i < N; i++) {
        if (held.length > 2000 || (held.length && rng2.chance(0.5))) {
          const k = rng2.int(0, held.length - 1);
          stack[top++] = held[k]!;
          held[k] = held[held.length - 1]!;
          held.pop();
        } else {
          rng2.int(0, 3);
          held.push(stack[--top]!);
        }
      }
    });
    for (const p of held) stack[top++] = p;
    return base;
  };
  let secs = Infinity;
  let base = Infinity;
  for (let i = 0; i < 4; i++) {
    secs = Math.min(secs, buddyRun());
    base = Math.min(base, stackRun());
  }
  row('alloc_pages_node + __free_pages (orders 0-3)', N / secs, ' ops/s', { name: 'free-list stack', value: N / base });

  const area = m.vm.getVmArea(64 * PAGE_SIZE)!;
  m.vm.mapPages(
    area.addr,
    Array.from({ length: 64 }, () => m.buddy.allocPages(0)),
  );
  const e = workerEntry('bench/write-worker');
  const w = new Worker(e.url, {
    argv: e.argv,
    workerData: { sab: m.sab, va: area.addr, bytes: PAGE_SIZE, rounds: 20000 },
  });
  const r = await new Promise<{ raw: number; translated: number }>((res, rej) => {
    w.once('message', res);
    w.once('error', rej);
  });
  await w.terminate();
  row('translated write32 in a worker (vmalloc)', r.translated, ' writes/s', {
    name: 'raw Int32Array stores',
    value: r.raw,
  });
}

function benchKernel(): void {
  console.log('kernel: replay throughput (JSON in and out included)');
  for (const ops of [1e4, 1e5, 1e6]) {
    const text = randomTrace(ops, 1);
    let lines = 0;
    let bytes = 0;
    const [s, secs] = time(() => replayText(text, (l) => ((lines += 1), (bytes += l.length))));
    const live = s.allocs - s.failed - s.frees;
    const [, parse] = time(() => {
      for (const l of text.split('\n')) if (l) JSON.parse(l);
    });
    row(`random trace, ${fmt(ops)}ops, ${fmt(live)} live at the end`, ops / secs, ' ops/s', {
      name: 'JSON.parse of the input alone',
      value: ops / parse,
    });
  }
  // the acceptance shape: 10^6 operations ending with about 300 k live areas
  replayAgainstC(1e6, 2, '10^6 ops, ~300 k live');
  console.log('kernel: the 2017 bitmap cover-letter workload (2^k allocations of 4 bytes)');
  const k = Number(process.env.PCPU_BENCH_LOG2 ?? 18);
  const n = 1 << k;
  for (const order of ['in order', 'alternating', 'reverse'] as const) {
    const r = new Replayer({ memoryBytes: 1 << 30 });
    let line = 0;
    for (const l of [
      '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}',
      '{"op":"slab_online"}',
      '{"op":"init_late"}',
    ])
      r.step(l, ++line);
    const ids = Array.from({ length: n }, (_, i) => i);
    const freeOrder =
      order === 'in order'
        ? ids
        : order === 'reverse'
          ? [...ids].reverse()
          : [...ids.filter((i) => i % 2 === 0), ...ids.filter((i) => i % 2 === 1)];
    const [, allocSecs] = time(() => {
      for (let i = 0; i < n; i++) r.step(`{"op":"alloc","id":"${i}","size":4,"align":4}`, ++line);
    });
    const [, freeSecs] = time(() => {
      for (const i of freeOrder) r.step(`{"op":"free","id":"${i}"}`, ++line);
    });
    console.log(
      `  2^${k} x 4 B, free ${order.padEnd(12)} alloc ${(allocSecs * 1000).toFixed(0).padStart(7)} ms   free ${(freeSecs * 1000).toFixed(0).padStart(7)} ms   (${fmt((2 * n) / (allocSecs + freeSecs))} ops/s overall)`,
    );
  }
}

/**
 * A random trace through the whole `percpu-sim replay` command (JSON in and out) against a C
 * build of the same algorithm on the same file: time, and peak memory where GNU time can tell.
 */
function replayAgainstC(ops: number, seed: number, label: string): void {
  const text = randomTrace(ops, seed, 0.3, 0.4);
  const dir = mkdtempSync(join(tmpdir(), 'pcpu-bench-'));
  const file = join(dir, 'trace.jsonl');
  writeFileSync(file, text);
  const bin = fileURLToPath(new URL('../../bin/percpu-sim.mjs', import.meta.url));
  const gnuTime = existsSync('/usr/bin/time');
  const peak: Record<string, number> = {};
  const run = (name: string, cmd: string, args: string[]): void => {
    if (!gnuTime) return void execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const r = spawnSync('/usr/bin/time', ['-f', 'PEAK %M', cmd, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    const m = /PEAK (\d+)/.exec(r.stderr ?? '');
    if (m) peak[name] = Number(m[1]) * 1024;
  };
  const [, secs] = time(() => run('js', process.execPath, [bin, 'replay', file]));
  let cSecs = NaN;
  try {
    const src = fileURLToPath(new URL('../../bench/ref/percpu-ref.c', import.meta.url));
    execFileSync('cc', ['-O2', '-o', join(dir, 'percpu-ref'), src]);
    [, cSecs] = time(() => run('c', join(dir, 'percpu-ref'), [file]));
  } catch (e) {
    console.log(`  (no C compiler for the baseline: ${(e as Error).message.split('\n')[0]})`);
  }
  rmSync(dir, { recursive: true, force: true });
  row(
    `percpu-sim replay, ${label}`,
    ops / secs,
    ' ops/s',
    Number.isNaN(cSecs) ? undefined : { name: 'C build (bench/ref)', value: ops / cSecs },
  );
  console.log(
    `    ${secs.toFixed(2)} s for the whole command${Number.isNaN(cSecs) ? '' : `, ${cSecs.toFixed(2)} s in C`}`,
  );
  if (peak.js && peak.c)
    row('  peak memory of the replay', peak.js / 2 ** 20, ' MiB', { name: 'C build', value: peak.c / 2 ** 20 });
}

/**
 * `replay --reference` against plain `replay` on the same 10^6-line trace, whole commands,
 * alternating and best of each: wall time, CPU time (user + system, where GNU time can tell:
 * the model runs on a second thread, so the two differ) and peak memory.
 */
function replayReference(): void {
  console.log('reference model: replay --reference against replay, whole commands, 10^6 ops');
  const dir = mkdtempSync(join(tmpdir(), 'pcpu-bench-'));
  const file = join(dir, 'trace.jsonl');
  writeFileSync(file, randomTrace(1e6, 2, 0.3, 0.4));
  const bin = fileURLToPath(new URL('../../bin/percpu-sim.mjs', import.meta.url));
  const gnuTime = existsSync('/usr/bin/time');
  type Run = { wall: number; cpu: number; peak: number };
  const run = (args: string[]): Run => {
    const t = performance.now();
    const r = gnuTime
      ? spawnSync('/usr/bin/time', ['-f', 'CPU %U %S PEAK %M', process.execPath, bin, ...args], {
          stdio: ['ignore', 'ignore', 'pipe'],
          encoding: 'utf8',
        })
      : spawnSync(process.execPath, [bin, ...args], { stdio: 'ignore', encoding: 'utf8' });
    const wall = (performance.now() - t) / 1000;
    const m = /CPU ([\d.]+) ([\d.]+) PEAK (\d+)/.exec(r.stderr ?? '');
    return { wall, cpu: m ? Number(m[1]) + Number(m[2]) : NaN, peak: m ? Number(m[3]) * 1024 : NaN };
  };
  const best = (a: Run | undefined, b: Run): Run =>
    a ? { wall: Math.min(a.wall, b.wall), cpu: Math.min(a.cpu, b.cpu), peak: Math.min(a.peak, b.peak) } : b;
  let plain: Run | undefined;
  let ref: Run | undefined;
  for (let i = 0; i < 3; i++) {
    plain = best(plain, run(['replay', file]));
    ref = best(ref, run(['replay', '--reference', file]));
  }
  rmSync(dir, { recursive: true, force: true });
  const base = { name: 'replay', value: plain!.wall };
  row('replay --reference, wall time', ref!.wall, ' s', base);
  if (!Number.isNaN(ref!.cpu)) {
    row('replay --reference, CPU time', ref!.cpu, ' s', { name: 'replay', value: plain!.cpu });
    row('replay --reference, peak memory', ref!.peak / 2 ** 20, ' MiB', {
      name: 'replay',
      value: plain!.peak / 2 ** 20,
    });
  }
}

/**
 * `percpu-sim replay` against the C build on a trace of every shape in bench/shapes.ts, and of
 * one more (UNSEEN) that nothing was tuned against: whole commands on the same file, the two
 * alternating, best of three; wall time and peak memory, and their ratios in one table. The
 * shapes are heavy for the kernel's O(n) walk (the C build takes about a minute on 10^6
 * operations of align-heavy), so the size is PCPU_BENCH_SHAPE_OPS operations (default
 * 2*10^5). PCPU_BENCH_BIN names another percpu-sim to measure (another checkout's
 * bin/percpu-sim.mjs), for a before and after under the same conditions; PCPU_BENCH_MEMORY
 * is its --memory in MiB (default none: the replay machine's own size); PCPU_BENCH_SHAPES
 * a comma-separated list of the shapes to run (default all).
 */
function replayShapes(): void {
  const ops = Number(process.env.PCPU_BENCH_SHAPE_OPS ?? 2e5);
  const bin = process.env.PCPU_BENCH_BIN ?? fileURLToPath(new URL('../../bin/percpu-sim.mjs', import.meta.url));
  const memory = process.env.PCPU_BENCH_MEMORY ? ['--memory', process.env.PCPU_BENCH_MEMORY] : [];
  console.log(`kernel: replay of ${fmt(ops)} operations of each trace shape, against the C build (bench/ref)`);
  console.log(`  ${bin}${memory.length ? ` ${memory.join(' ')}` : ''}; best of three, alternating`);
  const dir = mkdtempSync(join(tmpdir(), 'pcpu-bench-'));
  try {
    const ref = join(dir, 'percpu-ref');
    try {
      execFileSync('cc', ['-O2', '-o', ref, fileURLToPath(new URL('../../bench/ref/percpu-ref.c', import.meta.url))]);
    } catch (e) {
      console.log(`  (no C compiler for the baseline: ${(e as Error).message.split('\n')[0]})`);
      return;
    }
    const gnuTime = existsSync('/usr/bin/time');
    const measure = (cmd: string, args: string[], out: string): { secs: number; peak: number } => {
      const fd = openSync(out, 'w');
      const t = performance.now();
      const r = gnuTime
        ? spawnSync('/usr/bin/time', ['-f', 'PEAK %M', cmd, ...args], {
            stdio: ['ignore', fd, 'pipe'],
            encoding: 'utf8',
          })
        : spawnSync(cmd, args, { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
      const secs = (performance.now() - t) / 1000;
      closeSync(fd);
      const m = /PEAK (\d+)/.exec(r.stderr ?? '');
      return { secs, peak: m ? Number(m[1]) * 1024 : NaN };
    };
    const rows: string[] = [];
    const only = process.env.PCPU_BENCH_SHAPES?.split(',');
    for (const shape of [...SHAPES, UNSEEN].filter((s) => !only || only.includes(s.name))) {
      const file = join(dir, `${shape.name}.jsonl`);
      writeFileSync(file, shape.make(ops, 1));
      let js = { secs: Infinity, peak: Infinity };
      let c = { secs: Infinity, peak: Infinity };
      let same = true;
      for (let i = 0; i < 3; i++) {
        const a = measure(process.execPath, [bin, 'replay', ...memory, file], join(dir, 'js.out'));
        const b = measure(ref, [file], join(dir, 'c.out'));
        js = { secs: Math.min(js.secs, a.secs), peak: Math.min(js.peak, a.peak) };
        c = { secs: Math.min(c.secs, b.secs), peak: Math.min(c.peak, b.peak) };
        if (i === 0) same = spawnSync('cmp', ['-s', join(dir, 'js.out'), join(dir, 'c.out')]).status === 0;
      }
      const mib = (b: number): string => (Number.isFinite(b) ? `${(b / 2 ** 20).toFixed(0)}` : '-');
      rows.push(
        `  ${shape.name.padEnd(15)} ${js.secs.toFixed(2).padStart(8)} ${c.secs.toFixed(2).padStart(8)} ${(js.secs / c.secs).toFixed(2).padStart(6)}x` +
          `   ${mib(js.peak).padStart(6)} ${mib(c.peak).padStart(6)} ${Number.isFinite(js.peak) ? (js.peak / c.peak).toFixed(2).padStart(6) + 'x' : '      -'}` +
          `   ${same ? 'same' : 'DIFFERENT'}`,
      );
    }
    console.log(
      `  ${'shape'.padEnd(15)} ${'wall s'.padStart(8)} ${'C s'.padStart(8)} ${'ratio'.padStart(7)}   ${'MiB'.padStart(6)} ${'C MiB'.padStart(6)} ${'ratio'.padStart(7)}   output`,
    );
    for (const r of rows) console.log(r);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const which = process.argv.slice(2);
const want = (s: string): boolean => which.length === 0 || which.includes(s);
if (want('mem')) await benchMem();
if (want('kernel')) benchKernel();
if (want('replay-2m')) {
  console.log('kernel: a trace of about 2 M allocations (minutes: the C build takes as long)');
  replayAgainstC(3e6, 3, '3 M ops, ~1.95 M allocations');
}
if (want('shapes')) replayShapes();
if (want('reference')) replayReference();
if (want('check')) await benchCheck(row);
if (want('dataops')) {
  await benchDataOps();
  benchDataRuns();
}
if (want('smp')) await benchSmp(row);
if (want('controlled')) await benchControlled(row);
if (want('scale') || which.includes('scale-1024')) await benchScale(which.includes('scale-1024'));
if (want('policies') || which.includes('policies-long')) {
  const long = which.includes('policies-long');
  await benchPolicies({ long });
  await benchCoverage({ long });
}
