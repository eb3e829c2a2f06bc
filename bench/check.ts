/** The cost of the isolation check: checked against unchecked per-CPU writes, same thread. */
import type { Reply, Request } from '../src/sim/events.ts';
import { Simulation, simulationConfig } from '../src/harness/simulation.ts';
import { PerCpu } from '../src/api/per-cpu.ts';
import { DEFAULT_STRESS, runStress } from '../src/stress/engine.ts';
import { replayText } from '../src/trace/replay.ts';
import { randomTrace } from './trace.ts';

type Row = (name: string, value: number, unit: string, baseline?: { name: string; value: number }) => void;

export async function benchCheck(row: Row): Promise<void> {
  console.log('check: the isolation checker on per-CPU writes');
  const sim = new Simulation(simulationConfig({ seed: 1, cpus: 2, races: false, reference: false, policy: 'fifo' }));
  sim.actor.slabOnline();
  const make = (check: boolean): PerCpu => {
    const port = {
      request: (req: unknown) =>
        new Promise<Reply>((res) => {
          sim.actor.send({ ...(req as Request), cpu: 0 }, res);
          sim.actor.drain();
        }),
    };
    return new PerCpu(sim.cpuContext(0, { barrier_timeout_ms: 1000, check_isolation: check }), port, sim.machine.sab);
  };
  const n = 3_000_000;
  const rates: Record<string, number> = {};
  for (const check of [false, true]) {
    const cpu = make(check);
    const p = await cpu.alloc_percpu(4096, 64);
    const va = cpu.this_cpu_ptr(p);
    const loop = (): number => {
      const t = performance.now();
      for (let i = 0; i < n; i++) cpu.write(va + ((i * 4) & 4092), i);
      return n / ((performance.now() - t) / 1000);
    };
    loop();
    rates[String(check)] = Math.max(loop(), loop());
  }
  row('checked write32 (shadow + unit owner)', rates.true!, ' writes/s', {
    name: 'unchecked write32',
    value: rates.false!,
  });

  await benchRaces(row);
}

/** The race detector: stress with it on and off; replay with a watcher installed and without. */
async function benchRaces(row: Row): Promise<void> {
  console.log('check: the data-race detector and the finer scheduler');
  const stress = async (races: boolean, granularity: 'sleep' | 'access'): Promise<number> => {
    let requests = 0;
    const t = performance.now();
    for (const seed of [2, 4, 6])
      requests += (
        await runStress({ ...DEFAULT_STRESS, seed, races, granularity, args: { ...DEFAULT_STRESS.args, ops: 1000 } })
      ).requests;
    return requests / ((performance.now() - t) / 1000);
  };
  await stress(true, 'access'); // warm up
  const off = await stress(false, 'access');
  const on = await stress(true, 'access');
  const coarse = await stress(false, 'sleep');
  row('stress, race detector on (granularity access)', on, ' req/s', { name: 'detector off', value: off });
  row('stress, granularity access (detector off)', off, ' req/s', { name: 'granularity sleep', value: coarse });

  // the reference model: default stress, seeds per second, with it and without, best of three alternating
  const seedsPerSecond = async (reference: boolean): Promise<number> => {
    const seeds = [2, 3, 4, 6, 8, 9];
    const t = performance.now();
    for (const seed of seeds) await runStress({ ...DEFAULT_STRESS, seed, reference });
    return seeds.length / ((performance.now() - t) / 1000);
  };
  let withModel = 0;
  let without = 0;
  for (let i = 0; i < 3; i++) {
    without = Math.max(without, await seedsPerSecond(false));
    withModel = Math.max(withModel, await seedsPerSecond(true));
  }
  row('stress seeds, reference model on (the default)', withModel, ' seeds/s', {
    name: '--no-reference',
    value: without,
  });

  // replay never has a task running, so an installed watcher only costs its calls
  const text = randomTrace(2e5, 3);
  const replay = (watch: boolean): number => {
    const t = performance.now();
    replayText(
      text,
      () => {},
      watch
        ? {
            env: {
              lockdep_assert_held: null,
              kcsan: { delay: false, access: () => {}, destroyed: () => {} },
              tracepoint: null,
            },
          }
        : {},
    );
    return 2e5 / ((performance.now() - t) / 1000);
  };
  replay(false);
  const plain = Math.max(replay(false), replay(false));
  const watched = Math.max(replay(true), replay(true));
  row('replay 2*10^5 ops, a watcher installed', watched, ' ops/s', { name: 'no watcher (kcsan null)', value: plain });
}
