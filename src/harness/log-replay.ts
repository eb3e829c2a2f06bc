/**
 * Replays a recorded actor event log: the same machine, the same seed, and every request
 * admitted at the tick it arrived at in the recording. Since every scheduling choice comes
 * from the seeded PRNG, the replay takes the same decisions and ends in the same allocator
 * state, with no worker threads involved.
 */
import { mm_init, type PercpuSetup, setup_per_cpu_areas } from '../kernel/setup.ts';
import type { Percpu } from '../kernel/percpu.ts';
import { Machine, type MachineConfig } from '../mem/machine.ts';
import { Scheduler, type SchedulerOptions } from '../sim/scheduler.ts';
import { type ActorEvent, KWORKER } from '../sim/events.ts';
import { Prng } from '../util/prng.ts';

export interface ReplayedRun {
  machine: Machine;
  pc: Percpu;
  core: Scheduler;
  events: ActorEvent[];
}

export function replayEventLog(
  machineCfg: MachineConfig,
  setup: PercpuSetup,
  sched: SchedulerOptions,
  log: readonly ActorEvent[],
  /** the page-allocation failures the recorded run injected (same seed, same draws) */
  failRate = 0,
  /** a watcher of the replay: told the allocator once booted, then every event */
  watch?: { attach(pc: Percpu): void; observe(e: ActorEvent): void },
): ReplayedRun {
  const machine = new Machine(machineCfg);
  const pc = setup_per_cpu_areas(machine, setup);
  watch?.attach(pc);
  if (failRate > 0) machine.buddy.setFaultInjection({ failRate, prng: new Prng(sched.seed ^ 0x5eed) });
  const events: ActorEvent[] = [];
  const core = new Scheduler(pc, {
    ...sched,
    onEvent: (e) => {
      events.push(e);
      watch?.observe(e);
    },
  });
  core.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'boot' });
  core.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'early' });
  for (const e of log) {
    if (e.type !== 'arrive' && !(e.type === 'lifecycle' && e.state === 'slabOnline')) continue;
    if (e.type === 'arrive' && e.req.kind === 'reclaim' && e.cpu === KWORKER) continue; // the scheduler queues these itself
    while (core.tick < e.tick) {
      if (core.idle) throw new Error(`replay diverged: idle at tick ${core.tick}, the log continues at tick ${e.tick}`);
      core.step();
    }
    if (e.type === 'lifecycle') {
      mm_init(machine, pc);
      core.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'slabOnline' });
    } else core.admit(e.req, () => {});
  }
  core.drain();
  return { machine, pc, core, events };
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
