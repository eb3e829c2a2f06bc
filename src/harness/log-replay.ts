/**
 * Replays a recorded event log: the same simulation, the same seed, and every request sent
 * to the actor at the tick it arrived at in the recording. Since every scheduling choice
 * comes from the seeded PRNG, the replay takes the same decisions and ends in the same
 * allocator state, with no worker threads involved.
 */
import type { Percpu } from '../kernel/percpu.ts';
import { type ActorEvent, KWORKER } from '../sim/events.ts';
import type { RunObserver } from './observer.ts';
import { Simulation, type SimulationConfig } from './simulation.ts';

/** What a replay needs of the recorded run's configuration; the rest is as worker runs have it. */
export type ReplaySpec = Pick<
  SimulationConfig,
  | 'seed'
  | 'cpus'
  | 'nodes'
  | 'cpuToNode'
  | 'distance'
  | 'backend'
  | 'fc'
  | 'memoryMiB'
  | 'mutant'
  | 'failRate'
  | 'policy'
  | 'maxDelay'
>;

/**
 * Replays `log` on a fresh simulation. With `reference`, the replay is held against the
 * 2.6.36 model as it goes (the allocator's side of a worker run: no data path runs here, so
 * the other checkers have nothing to see); its findings are the simulation's violations.
 */
export function replayEventLog(
  spec: ReplaySpec,
  log: readonly ActorEvent[],
  observer?: RunObserver,
  reference = false,
): Simulation {
  const sim = new Simulation(
    {
      ...spec,
      shadow: false,
      granularity: 'sleep',
      lockdep: true,
      check: reference,
      strict: false,
      races: false,
      count: false,
      populated: false,
      reference,
      drive: 'manual',
      keepLog: true,
    },
    observer ? { observer } : {},
  );
  for (const e of log) {
    if (e.type !== 'arrive' && !(e.type === 'lifecycle' && e.state === 'slabOnline')) continue;
    if (e.type === 'arrive' && e.req.kind === 'reclaim' && e.cpu === KWORKER) continue; // the run queue queues these itself
    while (sim.tick < e.tick)
      if (!sim.step())
        throw new Error(`replay diverged: idle at tick ${sim.tick}, the log continues at tick ${e.tick}`);
    if (e.type === 'lifecycle') sim.actor.slabOnline();
    else sim.actor.send(e.req, () => {});
  }
  sim.actor.drain();
  return sim;
}

/** A compact picture of the allocator's state, for comparing two runs. */
export function allocatorFingerprint(pc: Percpu): string {
  const chunks = [...pc.chunks.values(), ...(pc.pcpu_reserved_chunk ? [pc.pcpu_reserved_chunk] : [])].map((c) => ({
    id: c.id,
    map: c.mapEntries(),
    free: c.free_size,
    hint: c.contig_hint,
    populated: Array.from(c.populated).join(''),
  }));
  return JSON.stringify({
    chunks,
    slots: pc.slotLists().map((l) => l.map((c) => c.id)),
    free_pages: pc.machine.buddy.totalFree(),
    stats: pc.stats,
  });
}
