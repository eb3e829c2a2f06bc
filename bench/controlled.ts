/**
 * What control costs: the same stress seeds on the coroutine engine, on free worker threads,
 * and on worker threads under the controller (one thread at a time, a park at every data-path
 * operation). Prints; asserts nothing.
 */
import { DEFAULT_STRESS, runStress } from '../src/stress/engine.ts';
import { stressOnWorkers, workerRoundConfig } from '../src/stress/campaign.ts';

type Row = (name: string, value: number, unit: string, baseline?: { name: string; value: number }) => void;

export async function benchControlled(row: Row): Promise<void> {
  console.log('controlled: the same stress seeds on the engine, on free threads and under the controller');
  const seeds = [2, 3, 4, 6];
  let engine = 0;
  let free = 0;
  let controlled = 0;
  let points = 0;
  for (const seed of seeds) {
    const cfg = workerRoundConfig({ ...DEFAULT_STRESS, seed, args: { ...DEFAULT_STRESS.args, ops: 200 } });
    let t = performance.now();
    await runStress(cfg);
    engine += performance.now() - t;
    t = performance.now();
    // the same program on both: without the torn-access probe, which only free threads run
    await stressOnWorkers(cfg, { failOnLeak: true }, 0);
    free += performance.now() - t;
    t = performance.now();
    const r = await stressOnWorkers(cfg, { failOnLeak: true, control: { policy: 'random' } });
    controlled += performance.now() - t;
    points += r.controlled?.schedule.length ?? 0;
  }
  const base = { name: 'engine', value: engine / seeds.length };
  row(`engine (coroutines), ${seeds.length} seeds, ops 200`, engine / seeds.length, ' ms/seed');
  row('worker threads, free', free / seeds.length, ' ms/seed', base);
  row('worker threads, controlled', controlled / seeds.length, ' ms/seed', base);
  row('  against free threads', controlled / free, 'x');
  row('  scheduling choices per seed', points / seeds.length, '');
  row('  per choice', (controlled * 1000) / Math.max(1, points), ' us');
}
