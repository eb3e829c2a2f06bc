/**
 * Saving a run on worker threads, and replaying it. The data writes of real threads are not
 * in the log, but every allocator request is, with the tick it arrived at; replaying the log
 * through the same scheduler and seed gives the same replies and the same final allocator
 * state, without any worker.
 */
import { allocatorFingerprint, replayEventLog } from '../harness/log-replay.ts';
import type { RunObserver } from '../harness/observer.ts';
import { type Violation, violationLine } from '../check/violation.ts';
import type { ActorEvent } from '../sim/events.ts';
import { type RunReport, runWorkload } from './run.ts';
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
    ...(r.controlled
      ? {
          controlled: {
            policy: r.controlled.policy,
            seed: r.controlled.seed,
            word: r.controlled.word,
            args: r.args,
            failOnLeak: r.controlled.failOnLeak,
            countViolations: r.controlled.countViolations,
            strictLocks: r.controlled.strictLocks,
            schedule: r.controlled.schedule,
            memoryHash: r.controlled.memoryHash,
            violations: r.violations.map(violationLine),
          },
        }
      : {}),
  });
}

/** What replaying a controlled run gives: its violations and memory against the recording's. */
export interface ControlledReplay {
  reproduced: boolean;
  report: RunReport;
  /** how it differs from the recording, one line each */
  differences: string[];
}

/**
 * Runs a saved controlled run again on worker threads, along its recorded schedule: the same
 * violations, in the same order, and the same final memory hash, or the differences.
 */
export async function replayControlled(s: SavedRunLog): Promise<ControlledReplay> {
  const k = s.controlled!;
  const { mutant, ...machine } = recordedMachine(s);
  const report = await runWorkload({
    workload: s.workload,
    ...machine,
    ...(mutant ? { mutant } : {}),
    args: k.args,
    failOnLeak: k.failOnLeak,
    countViolations: k.countViolations,
    strictLocks: k.strictLocks,
    control: { policy: k.policy, seed: k.seed, word: k.word, schedule: k.schedule },
  });
  const differences: string[] = [];
  const got = report.violations.map(violationLine);
  for (let i = 0; i < Math.max(got.length, k.violations.length); i++)
    if (got[i] !== k.violations[i])
      differences.push(`violation ${i + 1}: recorded ${k.violations[i] ?? 'none'}, replayed ${got[i] ?? 'none'}`);
  const hash = report.controlled?.memoryHash ?? 'none';
  if (hash !== k.memoryHash) differences.push(`final memory hash: recorded ${k.memoryHash}, replayed ${hash}`);
  return { reproduced: differences.length === 0, report, differences };
}

/** The recorded run's machine and scheduling, as both kinds of replay take them. */
function recordedMachine(s: SavedRunLog) {
  const c = s.config;
  return {
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
  };
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
  const replay = replayEventLog(recordedMachine(s), s.log, observer, reference);
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
