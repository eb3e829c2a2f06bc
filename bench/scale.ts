/**
 * Scale: stress seeds per second on a pool (--jobs) against one thread, with the ceiling this
 * machine allows (two independent processes); and machines of real size, with time and memory
 * per CPU worker. `npm run bench -- scale` runs it; `scale-1024` adds the 1024-CPU run (minutes).
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { runWorkload } from '../src/smp/run.ts';
import { campaignSeeds, runCampaign } from '../src/stress/campaign.ts';
import { DEFAULT_STRESS } from '../src/stress/engine.ts';

const BIN = fileURLToPath(new URL('../../bin/percpu-sim.mjs', import.meta.url));

async function seedsPerSecond(jobs: number, runs: number, base = 1): Promise<number> {
  const t = performance.now();
  await runCampaign(
    { ...DEFAULT_STRESS, seed: base },
    { seeds: campaignSeeds(base, runs, null), jobs, keepGoing: true },
  );
  return runs / ((performance.now() - t) / 1000);
}

/** Two whole processes at once, each a one-thread campaign: what the cores give, pool or not. */
function twoProcesses(runs: number): Promise<number> {
  const t = performance.now();
  const one = (base: number) =>
    new Promise<void>((resolve, reject) => {
      const p = spawn(
        process.execPath,
        [BIN, 'stress', '--runs', String(runs), '--seed', String(base), '--jobs', '1'],
        { stdio: 'ignore' },
      );
      p.on('exit', (c) => (c === 0 || c === 1 ? resolve() : reject(new Error(`exit ${c}`))));
    });
  return Promise.all([one(1), one(1001)]).then(() => (2 * runs) / ((performance.now() - t) / 1000));
}

/** A run on workers, with the peak resident memory it added, sampled every 50 ms. */
async function sized(
  label: string,
  cpus: number,
  workload: string,
  args: Record<string, number>,
  cpusPerThread = 1,
): Promise<void> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const t = performance.now();
  const r = await runWorkload({ workload, cpus, args, seed: 1, cpusPerThread });
  clearInterval(timer);
  const secs = (performance.now() - t) / 1000;
  const perThread = (peak - before) / r.threads.count / 2 ** 20;
  console.log(
    `  ${label.padEnd(52)} ${r.verdict.toUpperCase().padEnd(5)} ${secs.toFixed(1).padStart(6)} s   ${r.threads.count} threads, ${perThread.toFixed(1)} MB per worker thread (peak rss ${(peak / 2 ** 30).toFixed(2)} GB)`,
  );
}

export async function benchScale(big: boolean): Promise<void> {
  console.log(`scale: stress campaigns on ${availableParallelism()} cores, and machines of real size`);
  const runs = 8;
  const one = await seedsPerSecond(1, runs);
  const two = await seedsPerSecond(2, runs, 101);
  const ceiling = await twoProcesses(runs);
  console.log(
    `  stress --jobs 2: ${two.toFixed(2)} seeds/s   baseline --jobs 1: ${one.toFixed(2)} seeds/s   ratio ${(two / one).toFixed(2)}`,
  );
  console.log(
    `  two whole processes at once: ${ceiling.toFixed(2)} seeds/s   ratio ${(ceiling / one).toFixed(2)} (what this machine's cores give)`,
  );
  await sized('run counter --cpus 64 (default adds)', 64, 'counter', {});
  await sized('run counter --cpus 256 --arg adds=1000', 256, 'counter', { adds: 1000 });
  if (big) await sized('run churn --cpus 1024 --cpus-per-thread 16 --arg ops=50', 1024, 'churn', { ops: 50 }, 16);
}
