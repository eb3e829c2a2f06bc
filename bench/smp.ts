/** SMP benchmarks: actor round trips, batches, this_cpu_add, and CPU bring-up. */
import { Simulation, simulationConfig } from '../src/harness/simulation.ts';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { MessageChannel, Worker } from 'node:worker_threads';
import { SmpMachine } from '../src/smp/smp-machine.ts';
import { workerEntry } from '../src/smp/worker-url.ts';

type Row = (name: string, value: number, unit: string, baseline?: { name: string; value: number }) => void;

const wlUrl = (name: string): string => {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return new URL(`./workloads/${name}.${ext}`, import.meta.url).href;
};

async function pingPong(n: number): Promise<number> {
  const e = workerEntry('bench/echo-worker');
  const w = new Worker(e.url, { argv: e.argv });
  await new Promise((r) => w.once('online', r));
  const rtt = await new Promise<number>((resolve) => {
    let i = 0;
    let t = 0;
    w.on('message', () => {
      i++;
      if (i === 1000) t = performance.now();
      if (i === n + 1000) resolve(n / ((performance.now() - t) / 1000));
      else w.postMessage(i);
    });
    w.postMessage(0);
  });
  await w.terminate();
  return rtt;
}

/** comlink calls from a worker into an exposed no-op on the main thread, per second */
async function comlinkCalls(n: number): Promise<number> {
  const ch = new MessageChannel();
  Comlink.expose({ request: (x: unknown) => Promise.resolve(x) }, nodeEndpoint(ch.port1));
  const e = workerEntry('bench/comlink-worker');
  const w = new Worker(e.url, { argv: e.argv, workerData: { port: ch.port2, n }, transferList: [ch.port2] });
  const rate = await new Promise<number>((res, rej) => {
    w.once('message', res);
    w.once('error', rej);
  });
  await w.terminate();
  ch.port1.close();
  return rate;
}

async function machineFor(cpus: number): Promise<SmpMachine> {
  const sim = new Simulation(
    simulationConfig({
      seed: 1,
      cpus,
      memoryMiB: 128,
      shadow: false,
      check: false,
      policy: 'fifo',
      drive: 'event-loop',
      stepsPerTurn: 64,
    }),
  );
  return new SmpMachine(sim);
}

export async function benchSmp(row: Row): Promise<void> {
  console.log('smp: the allocator actor and the CPU workers');
  const base = await pingPong(20000);
  console.log(`  raw postMessage ping-pong (main <-> worker): ${(base / 1000).toFixed(1)} k round trips/s`);
  row('comlink calls to a no-op (comlink alone)', await comlinkCalls(5000), ' calls/s', {
    name: 'ping-pong',
    value: base,
  });
  for (const cpus of [1, 2, 4, 8]) {
    const smp = await machineFor(cpus);
    smp.actor.slabOnline();
    await smp.actor.initLate();
    const all = Array.from({ length: cpus }, (_, c) => c);
    await smp.runPhase(all, wlUrl('roundtrip'), 'run', { n: 200, batch: 0 }); // warm up
    const t = performance.now();
    const rs = await smp.runPhase(all, wlUrl('roundtrip'), 'run', { n: 2000, batch: 0 });
    const secs = (performance.now() - t) / 1000;
    const ops = rs.reduce((a, r) => a + (r.result as { ops: number }).ops, 0);
    row(`alloc+free round trips, ${cpus} CPU(s)`, ops / secs, ' trips/s', { name: 'ping-pong', value: base });
    const tb = performance.now();
    const rb = await smp.runPhase(all, wlUrl('roundtrip'), 'run', { n: 8192, batch: 64 });
    const secsB = (performance.now() - tb) / 1000;
    const opsB = rb.reduce((a, r) => a + (r.result as { ops: number }).ops, 0);
    row(`  batched by 64, ${cpus} CPU(s)`, opsB / secsB, ' ops/s', { name: 'ping-pong', value: base });
    await smp.shutdown();
  }

  for (const checked of [false, true]) {
    // the same loops on a machine that checks isolation: every access through the checker
    // with checking, the isolation checker tags each area as the allocator hands it out, as a run does
    const smp = checked
      ? new SmpMachine(
          new Simulation(
            simulationConfig({ seed: 1, cpus: 1, memoryMiB: 128, races: false, policy: 'fifo', drive: 'event-loop' }),
          ),
        )
      : await machineFor(1);
    const [early] = await smp.runPhase([0], wlUrl('adds'), 'early', {});
    smp.actor.slabOnline();
    await smp.actor.initLate();
    const [r] = await smp.runPhase([0], wlUrl('adds'), 'run', { n: 5_000_000 }, early!.result);
    if (!r!.ok) throw new Error(`adds: ${r!.error?.message}`);
    const x = r!.result as {
      raw: number;
      percpu: number;
      view: number;
      rawWrites: number;
      writes: number;
      viewWrites: number;
    };
    const tag = checked ? ', checked' : '';
    row(`this_cpu_add in a worker${tag}`, x.percpu, ' adds/s', { name: 'raw SAB increments', value: x.raw });
    row(`this_cpu_words v[0] += 1${tag}`, x.view, ' adds/s', { name: 'raw SAB increments', value: x.raw });
    row(`this_cpu_write in a worker${tag}`, x.writes, ' writes/s', {
      name: 'raw Int32Array stores',
      value: x.rawWrites,
    });
    row(`this_cpu_words v[i] = x${tag}`, x.viewWrites, ' writes/s', {
      name: 'raw Int32Array stores',
      value: x.rawWrites,
    });
    await smp.close();
  }

  for (const n of [64, 256]) {
    const tBare = performance.now();
    const bare = Array.from(
      { length: n },
      () => new Worker("require('node:worker_threads').parentPort.postMessage('up')", { eval: true }),
    );
    await Promise.all(bare.map((w) => new Promise((r) => w.once('message', r))));
    const bareSecs = (performance.now() - tBare) / 1000;
    await Promise.all(bare.map((w) => w.terminate()));
    const t = performance.now();
    const smp = await machineFor(n);
    smp.actor.slabOnline();
    await smp.actor.initLate();
    await smp.runPhase(
      Array.from({ length: n }, (_, c) => c),
      wlUrl('roundtrip'),
      'run',
      { n: 1, batch: 0 },
    );
    const secs = (performance.now() - t) / 1000;
    console.log(
      `  boot ${n} CPU workers (to the first completed phase): ${secs.toFixed(2)} s   baseline ${n} bare workers: ${bareSecs.toFixed(2)} s   ratio ${(secs / bareSecs).toFixed(2)}`,
    );
    await smp.shutdown();
  }
}
