/**
 * Saving a run on worker threads, and replaying it. The data writes of real threads are not
 * in the log, but every allocator request is, with the tick it arrived at; replaying the log
 * through the same scheduler and seed gives the same replies and the same final allocator
 * state, without any worker.
 */
import { allocatorFingerprint, replayEventLog } from '../harness/log-replay.ts';
import type { RunObserver } from '../harness/observer.ts';
import type { Violation } from '../check/violation.ts';
import type { ActorEvent } from '../sim/events.ts';
import type { RunReport } from './run.ts';
import { type SavedRunLog, SavedRunLogSchema, writeChecked } from '../files/saved.ts';

/** Saves a run on worker threads for replay-run (through the schema that reads it back). */
export function saveRunLog(file: string, r: RunReport): void {
  writeChecked(file, SavedRunLogSchema, {
    format: 'percpu-sim-run-log',
    version: 1,
    workload: r.workload,
    seed: r.seed,
    config: r.config,
    verdict: r.verdict,
    fingerprint: r.fingerprint,
    log: r.log,
  });
}

export interface RunLogReplay {
  requests: number;
  /** replies that differ from the recording, as "task N: recorded X, replayed Y" */
  mismatches: string[];
  sameFinalState: boolean;
  /** where the replayed run parts from 2.6.36 (the reference model), or what else a checker found */
  violations: Violation[];
}

/** Replays a saved worker run's event log and compares replies and the final state. */
export function replayRunLog(s: SavedRunLog, observer?: RunObserver, reference = true): RunLogReplay {
  const c = s.config;
  const replay = replayEventLog(
    {
      seed: s.seed,
      cpus: c.cpus,
      nodes: c.nodes,
      ...(c.cpuToNode ? { cpuToNode: c.cpuToNode } : {}),
      ...(c.distance ? { distance: c.distance } : {}),
      backend: c.backend,
      fc: c.fc,
      memoryMiB: c.memoryMiB,
      mutant: c.mutant,
      failRate: c.failRate,
      policy: c.policy,
      maxDelay: c.maxDelay,
    },
    s.log,
    observer,
    reference,
  );
  const done = (log: readonly ActorEvent[]) =>
    new Map(log.flatMap((e) => (e.type === 'done' ? [[e.task, JSON.stringify(e.reply)] as const] : [])));
  const want = done(s.log);
  const got = done(replay.log);
  const mismatches: string[] = [];
  for (const [task, reply] of want)
    if (got.get(task) !== reply)
      mismatches.push(`task ${task}: recorded ${reply}, replayed ${got.get(task) ?? 'nothing'}`);
  return {
    requests: want.size,
    mismatches,
    sameFinalState: allocatorFingerprint(replay.pc) === s.fingerprint,
    violations: [...replay.violations],
  };
}
