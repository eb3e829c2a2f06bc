/**
 * Systematic exploration of a small scenario, stateless in the manner of CHESS and loom: run
 * it to the end, then go back to the deepest choice point that still has an alternative, and
 * run again with the choices up to there replayed.
 *
 * With reduction (the default) it is dynamic partial-order reduction (Flanagan and Godefroid):
 * after each execution, every pair of dependent steps of different threads that nothing else
 * orders (happens-before over program order and earlier dependent pairs) is a race, and the
 * later step's thread is added as an alternative at the choice point before the earlier one
 * (its task that was ready there); when none of its tasks was ready, every ready task is. Sleep sets (Godefroid) keep it from
 * running again an alternative whose first step commutes with what was chosen instead.
 *
 * Both walks bound the preemptions: choosing another task while the one that ran last is still
 * ready. With reduction, an alternative that would cost one preemption too many is also tried
 * at the latest earlier choice point where it costs none (the conservative points of bounded
 * POR, Coons, Musuvathi and McKinley), so that the bound's promise holds: what the plain walk
 * reaches within the bound, some explored schedule equivalent to it does too.
 */
import { VectorClock } from '../check/vector-clock.ts';
import type { Violation } from '../check/violation.ts';
import type { StressConfig } from '../stress/engine.ts';
import { type ExecuteOptions, type Execution, type Step, dependent, execute, threadOf } from './execute.ts';

export interface ExploreOptions extends ExecuteOptions {
  preemptions: number;
  maxSchedules: number;
  /** wall-clock bound, in seconds */
  maxSeconds: number;
  /** false: the plain depth-first walk, for comparison */
  reduction: boolean;
  /** after each execution: schedules so far, and the depth of the choice stack */
  /** after each schedule: how many so far, the depth of the walk, and the kinds of violation found */
  onProgress?: (schedules: number, depth: number, found: number) => void;
  /** stops the exploration after the execution under way; what it found so far is returned */
  signal?: AbortSignal;
}

/** A violation an exploration found, with the schedule that shows it. */
export interface ExploreViolation extends Violation {
  /** the choices that reproduce it (task names, one per choice point) */
  schedule: string[];
}

export interface ExploreResult {
  schedules: number;
  /** every schedule within the bound was covered */
  complete: boolean;
  /** what ended an incomplete exploration */
  stoppedBy: 'schedules' | 'time' | 'interrupt' | null;
  /** one per distinct checker/kind, with the first schedule that showed it */
  violations: ExploreViolation[];
  /** choice points in the deepest execution */
  maxDepth: number;
}

interface Node {
  enabled: string[];
  last: string | null;
  chosen: string;
  /** preemptions spent before this choice */
  spent: number;
  backtrack: Set<string>;
  done: Set<string>;
  /** tasks not to run here, with the step each would take */
  sleep: Map<string, Step>;
  /** the step each explored task took from here */
  stepOf: Map<string, Step>;
}

/** What choosing `t` at a node costs: one preemption when the task that ran last is still ready. */
const cost = (n: { enabled: string[]; last: string | null }, t: string): number =>
  n.last !== null && n.last !== t && n.enabled.includes(n.last) ? 1 : 0;

/**
 * Whether step i happens before the thread of step j reaches j: program order and dependent
 * pairs, closed, but not the pair (i, j) itself, which is the race being asked about.
 */
function happensBefore(steps: readonly Step[]): (i: number, j: number) => boolean {
  const threads = new Map<string, number>();
  /** after each step: what its thread knows */
  const after: VectorClock[] = [];
  /** before each step: what its thread knew from program order alone */
  const before: VectorClock[] = [];
  const lastOf = new Map<string, number>();
  steps.forEach((s, j) => {
    if (!threads.has(s.thread)) threads.set(s.thread, threads.size);
    const prev = lastOf.get(s.thread);
    const c = prev === undefined ? new VectorClock() : after[prev]!.clone();
    before[j] = c.clone();
    for (let i = 0; i < j; i++) if (steps[i]!.thread !== s.thread && dependent(steps[i]!, s)) c.join(after[i]!);
    c.increment(threads.get(s.thread)!);
    after[j] = c;
    lastOf.set(s.thread, j);
  });
  return (i, j) => {
    const t = threads.get(steps[i]!.thread)!;
    return before[j]!.get(t) >= after[i]!.get(t);
  };
}

export async function explore(cfg: StressConfig, opts: ExploreOptions): Promise<ExploreResult> {
  const t0 = Date.now();
  const stack: Node[] = [];
  let prefix = 0; // how many nodes of the stack the next execution replays
  let schedules = 0;
  let maxDepth = 0;
  const violations = new Map<string, ExploreViolation>();

  for (;;) {
    const exec = await execute(
      cfg,
      (enabled, last, depth, steps) => {
        if (depth < prefix) {
          const n = stack[depth]!;
          return enabled.includes(n.chosen) ? n.chosen : enabled[0]!;
        }
        const parent = depth > 0 ? stack[depth - 1]! : null;
        const sleep = new Map<string, Step>();
        if (parent && opts.reduction) {
          // what slept (or was done) at the parent sleeps on while it commutes with the parent's step
          const taken = steps[steps.length - 1];
          const carry = new Map(parent.sleep);
          for (const d of parent.done)
            if (d !== parent.chosen && parent.stepOf.has(d)) carry.set(d, parent.stepOf.get(d)!);
          if (taken) for (const [u, st] of carry) if (u !== taken.key && !dependent(st, taken)) sleep.set(u, st);
        }
        const spent = parent ? parent.spent + cost(parent, parent.chosen) : 0;
        const awake = enabled.filter((t) => !sleep.has(t));
        const pool = awake.length ? awake : enabled;
        const chosen = last !== null && pool.includes(last) ? last : pool[0]!;
        stack.push({
          enabled,
          last,
          chosen,
          spent,
          backtrack: new Set([chosen]),
          done: new Set([chosen]),
          sleep,
          stepOf: new Map(),
        });
        return chosen;
      },
      opts,
    );
    schedules++;
    maxDepth = Math.max(maxDepth, exec.choices.length);
    record(exec, violations);
    stack.length = Math.min(stack.length, exec.choices.length);
    exec.choices.forEach((c, d) => {
      const st = exec.steps[c.step];
      if (st && stack[d]) stack[d].stepOf.set(c.chosen, st);
    });
    if (opts.reduction) addBacktracks(exec, stack, opts.preemptions);
    else for (const n of stack) for (const t of n.enabled) n.backtrack.add(t);
    opts.onProgress?.(schedules, stack.length, violations.size);

    // the deepest choice point with an alternative left within the bound
    let next = -1;
    let alt = '';
    for (let d = stack.length - 1; d >= 0 && next < 0; d--) {
      const n = stack[d]!;
      for (const t of [...n.backtrack].sort()) {
        if (n.done.has(t) || n.sleep.has(t) || !n.enabled.includes(t)) continue;
        if (n.spent + cost(n, t) > opts.preemptions) continue;
        next = d;
        alt = t;
        break;
      }
    }
    if (next < 0) return { schedules, complete: true, stoppedBy: null, violations: [...violations.values()], maxDepth };
    if (schedules >= opts.maxSchedules)
      return { schedules, complete: false, stoppedBy: 'schedules', violations: [...violations.values()], maxDepth };
    if (opts.signal?.aborted)
      return { schedules, complete: false, stoppedBy: 'interrupt', violations: [...violations.values()], maxDepth };
    if ((Date.now() - t0) / 1000 >= opts.maxSeconds)
      return { schedules, complete: false, stoppedBy: 'time', violations: [...violations.values()], maxDepth };
    stack.length = next + 1;
    const n = stack[next]!;
    n.chosen = alt;
    n.done.add(alt);
    prefix = next + 1;
  }
}

/** The races of one execution become alternatives at the choice points before them. */
function addBacktracks(exec: Execution, stack: Node[], bound: number): void {
  const { steps, choices } = exec;
  const nodeAt = new Map<number, number>();
  choices.forEach((c, d) => nodeAt.set(c.step, d));
  const hb = happensBefore(steps);
  for (let j = 0; j < steps.length; j++) {
    const sj = steps[j]!;
    const seen = new Set<string>();
    for (let i = j - 1; i >= 0; i--) {
      const si = steps[i]!;
      if (si.thread === sj.thread || seen.has(si.thread) || !dependent(si, sj)) continue;
      seen.add(si.thread); // only the latest dependent step of each other thread
      if (hb(i, j)) continue;
      const d = nodeAt.get(i);
      if (d === undefined || !stack[d]) continue; // only one task could run there
      const n = stack[d];
      // the task of j's thread that was ready there leads to j; with none, any may
      const mine = n.enabled.filter((t) => threadOf(t) === sj.thread);
      const want = mine.length ? mine : n.enabled;
      for (const t of want) {
        n.backtrack.add(t);
        if (n.spent + cost(n, t) > bound) {
          // too dear here: also where it costs nothing, the latest such point before
          for (let e = d - 1; e >= 0; e--) {
            const m = stack[e]!;
            if (m.enabled.includes(t) && cost(m, t) === 0) {
              m.backtrack.add(t);
              break;
            }
          }
        }
      }
    }
  }
}

function record(exec: Execution, into: Map<string, ExploreViolation>): void {
  for (const v of exec.report.violations) {
    const k = `${v.checker}/${v.kind}`;
    if (!into.has(k)) into.set(k, { ...v, schedule: exec.choices.map((c) => c.chosen) });
  }
}

/** A schedule's rerun, and where the run did not follow it. */
export interface ScheduledExecution extends Execution {
  /** the first entry no ready task answered to, or the entries past the run's last choice point; null when every entry was followed */
  unfollowed: string | null;
}

/** Reruns one schedule an exploration printed (task names, one per choice point). */
export async function runSchedule(
  cfg: StressConfig,
  schedule: readonly string[],
  opts: ExecuteOptions = {},
): Promise<ScheduledExecution> {
  let unfollowed: string | null = null;
  const exec = await execute(
    cfg,
    (enabled, last, depth) => {
      const want = depth < schedule.length ? schedule[depth]! : null;
      if (want !== null && enabled.includes(want)) return want;
      if (want !== null && unfollowed === null)
        unfollowed = `at choice point ${depth + 1} the ready tasks were ${enabled.join(', ')}, not "${want}"`;
      return last !== null && enabled.includes(last) ? last : enabled[0]!;
    },
    opts,
  );
  if (unfollowed === null && exec.choices.length < schedule.length)
    unfollowed = `the run has ${exec.choices.length} choice point(s); "${schedule.slice(exec.choices.length).join(',')}" came after its end`;
  return { ...exec, unfollowed };
}
