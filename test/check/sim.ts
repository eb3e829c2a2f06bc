/** A small in-thread machine for checker tests: CPUs as PerCpu objects on one scheduler. */
import { Scheduler } from '../../src/sim/scheduler.ts';
import type { ActorEvent, Reply, Request } from '../../src/sim/events.ts';
import { IsolationTracker } from '../../src/check/isolation.ts';
import { LockChecker } from '../../src/check/locks.ts';
import type { MutantName } from '../../src/kernel/mutants.ts';
import { mm_init, setup_per_cpu_areas } from '../../src/kernel/setup.ts';
import { Machine } from '../../src/mem/machine.ts';
import { type CpuContext, IsolationError, PerCpu } from '../../src/api/per-cpu.ts';

export function sim(opts: { cpus?: number; mutant?: MutantName; check?: boolean; count?: boolean } = {}) {
  const cpus = opts.cpus ?? 2;
  const machine = new Machine({ cpus, memoryBytes: 32 << 20, shadow: true });
  const pc = setup_per_cpu_areas(machine, { mutants: opts.mutant ? [opts.mutant] : [] });
  mm_init(machine, pc);
  const tracker = new IsolationTracker(pc, 77);
  const locks = new LockChecker({ pc });
  const events: ActorEvent[] = [];
  const core = new Scheduler(pc, {
    seed: 77,
    policy: 'fifo',
    onEvent: (e) => {
      events.push(e);
      tracker.observe(e);
      locks.observe(e);
    },
  });
  core.admit({ kind: 'init_late', cpu: 0 }, () => {});
  core.drain();
  const cpu = (n: number): PerCpu => {
    const ctx: CpuContext = {
      cpu: n,
      nr_cpus: cpus,
      seed: 77,
      per_cpu_offset: [...pc.__per_cpu_offset],
      static_vars: Object.fromEntries(
        pc.image.vars.map((v) => [v.name, { ptr: pc.image.per_cpu_start + v.offset, size: v.size }]),
      ),
      barrier_timeout_ms: 1000,
      check_isolation: opts.check ?? true,
      count_violations: opts.count ?? false,
    };
    const port = {
      request: (req: unknown) =>
        new Promise<Reply>((resolve) => {
          core.admit({ ...(req as Request), cpu: n }, resolve);
          core.drain();
        }),
    };
    return new PerCpu(ctx, port, machine.sab);
  };
  return { machine, pc, core, tracker, locks, events, cpu };
}

/** Runs `fn`, which must commit an isolation violation; returns the error it raised. */
export function isolationError(fn: () => void): IsolationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof IsolationError) return e;
    throw e;
  }
  throw new Error('no violation was reported');
}
