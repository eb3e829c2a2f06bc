/** A small in-thread machine for checker tests: CPUs as PerCpu objects in front of one simulation. */
import { type CpuContext, IsolationError, PerCpu } from '../../src/api/per-cpu.ts';
import { Simulation, simulationConfig } from '../../src/harness/simulation.ts';
import type { MutantName } from '../../src/kernel/mutants.ts';
import type { Reply, Request } from '../../src/sim/events.ts';

export function sim(opts: { cpus?: number; mutant?: MutantName; check?: boolean; count?: boolean } = {}) {
  const cpus = opts.cpus ?? 2;
  const s = new Simulation(
    simulationConfig({
      seed: 77,
      cpus,
      memoryMiB: 32,
      mutant: opts.mutant ?? null,
      policy: 'fifo',
      races: false,
      keepLog: true,
    }),
  );
  s.actor.slabOnline();
  void s.actor.initLate();
  s.actor.drain();
  const cpu = (n: number): PerCpu => {
    const ctx: CpuContext = s.cpuContext(n, {
      barrier_timeout_ms: 1000,
      check_isolation: opts.check ?? true,
      count_violations: opts.count ?? false,
    });
    const port = {
      request: (req: unknown) =>
        new Promise<Reply>((resolve) => {
          s.actor.send({ ...(req as Request), cpu: n }, resolve);
          s.actor.drain();
        }),
    };
    return new PerCpu(ctx, port, s.machine.sab);
  };
  const checkers = s.checkers!;
  return {
    machine: s.machine,
    pc: s.pc,
    core: s.runQueue,
    tracker: checkers.isolation,
    locks: checkers.locks,
    events: s.log,
    cpu,
  };
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
