/**
 * The command lines percpu-sim prints to rerun something: the inverse of parsing a
 * configuration. Every flag that decides the run is spelled out (the machine a seed chose
 * included), so that a line still reruns the same thing when the defaults change.
 */
import type { Args } from '../api/workload.ts';
import { type RunConfig, type StressConfig, resolveMachine } from './config.ts';

/** A word as a POSIX shell reads it back: quoted only when it has to be. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** How a stress configuration is rerun, beyond the configuration itself. */
export interface StressRerun {
  /** the scripted scenario (--scenario), for an exploration or one of its schedules */
  scenario?: string | null;
  /** one explored schedule (--schedule): the task to run at each choice point */
  schedule?: readonly string[] | null;
  /** the exploration itself (--explore) */
  explore?: { preemptions: number; reduction: boolean };
  /** on real worker threads (--workers) */
  workers?: boolean;
  /** under the controller (--controlled) */
  controlled?: boolean;
}

/** --cpu-nodes and --distance of a machine that has them. */
function machineFlags(c: { cpuToNode?: readonly number[]; distance?: readonly (readonly number[])[] }): string[] {
  return [
    ...(c.cpuToNode ? [`--cpu-nodes ${c.cpuToNode.join(',')}`] : []),
    ...(c.distance ? [`--distance ${c.distance.map((r) => r.join(',')).join('/')}`] : []),
  ];
}

/** `percpu-sim stress ...` that reruns a configuration exactly. */
export function stressCommand(config: StressConfig, how: StressRerun = {}): string {
  const cfg = { ...config, ...resolveMachine(config) };
  const a = cfg.args;
  const parts = [
    'percpu-sim stress',
    `--seed ${cfg.seed}`,
    `--cpus ${cfg.cpus}`,
    `--nodes ${cfg.nodes}`,
    ...machineFlags(cfg),
    `--backend ${cfg.backend}`,
    `--memory ${cfg.memoryMiB}`,
    `--policy ${cfg.policy}`,
    `--granularity ${cfg.granularity}`,
    `--max-delay ${cfg.maxDelay}`,
    `--fail-rate ${cfg.failRate}`,
    `--ops ${a.ops}`,
    `--alloc-pct ${a.allocPct}`,
    `--reserved-pct ${a.reservedPct}`,
    `--sizes ${a.sizes}`,
    `--max-align-shift ${a.maxAlignShift}`,
    `--max-live ${a.maxLive}`,
    `--early-ops ${a.earlyOps}`,
  ];
  if (cfg.mutant) parts.push(`--mutant ${cfg.mutant}`);
  if (cfg.strict) parts.push('--strict');
  if (!cfg.races) parts.push('--no-races');
  if (!cfg.lockdep) parts.push('--no-lockdep');
  if (!cfg.reference) parts.push('--no-reference');
  if (cfg.count) parts.push('--count');
  if (cfg.word === 32) parts.push('--word 32');
  if (how.scenario) parts.push(`--scenario ${how.scenario}`);
  if (how.explore) {
    parts.push(`--explore --preemptions ${how.explore.preemptions}`);
    if (!how.explore.reduction) parts.push('--no-reduction');
  }
  if (how.schedule) parts.push(`--schedule ${how.schedule.join(',') || '-'}`);
  if (how.workers) parts.push('--workers');
  if (how.controlled) parts.push('--controlled');
  return parts.join(' ');
}

/** What `percpu-sim run` needs to rerun a workload run: its report's fields. */
export interface RunRerun {
  workload: string;
  seed: number;
  config: RunConfig;
  args: Args;
  cpusPerThread?: number;
}

/** `percpu-sim run ...` that reruns a workload on the same machine, seed and arguments. */
export function runCommand(r: RunRerun): string {
  const c = r.config;
  const parts = [
    'percpu-sim run',
    shellWord(r.workload),
    `--seed ${r.seed}`,
    `--cpus ${c.cpus}`,
    `--nodes ${c.nodes}`,
    ...machineFlags(c),
    `--backend ${c.backend}`,
    `--memory ${c.memoryMiB}`,
  ];
  if (c.mutant) parts.push(`--mutant ${c.mutant}`);
  if (c.policy !== 'random') parts.push(`--policy ${c.policy}`);
  if (r.cpusPerThread && r.cpusPerThread > 1) parts.push(`--cpus-per-thread ${r.cpusPerThread}`);
  for (const [k, v] of Object.entries(r.args)) parts.push(`--arg ${shellWord(`${k}=${v}`)}`);
  return parts.join(' ');
}

/**
 * `percpu-sim run ...` from the command line as given, with the seed it drew: for a run cut
 * short, before its report says what the machine was.
 */
export function runFlagsCommand(workload: string, seed: number, flags: readonly string[]): string {
  const rest: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === '--seed') i++;
    else if (!flags[i]!.startsWith('--seed=')) rest.push(shellWord(flags[i]!));
  }
  return ['percpu-sim run', shellWord(workload), `--seed ${seed}`, ...rest].join(' ');
}

/** `percpu-sim ftrace FILE --smp ...`: a trace's SMP replay on the same machine and seed. */
export function ftraceSmpCommand(file: string, o: { cpus: number; seed: number; memoryMiB: number }): string {
  return `percpu-sim ftrace ${shellWord(file)} --smp --cpus ${o.cpus} --seed ${o.seed} --memory ${o.memoryMiB}`;
}

/** `percpu-sim replay FILE` (- for standard input). */
export function replayCommand(file: string): string {
  return `percpu-sim replay ${shellWord(file)}`;
}

/** `percpu-sim replay-run FILE`: a saved run, replayed. */
export function replayRunCommand(file: string): string {
  return `percpu-sim replay-run ${shellWord(file)}`;
}
