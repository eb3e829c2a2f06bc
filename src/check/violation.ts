/**
 * One shape for everything a run can find wrong, whichever checker or driver found it. Every
 * driver (stress, exploration, worker runs, log replay) returns its findings as a list of
 * these, in the order they were first seen, and every report formats this one shape.
 */

export const CHECKERS = [
  'allocator',
  'areas',
  'data',
  'isolation',
  'kernel-bug',
  'lifecycle',
  'liveness',
  'locks',
  'mm',
  'pages',
  'races',
  'reference',
  'scheduler',
  'workers',
  'workload',
] as const;

export type CheckerName = (typeof CHECKERS)[number];

export interface Violation {
  checker: CheckerName;
  /** the checker's own classification (an invariant, a lock rule, an isolation kind, a BUG code) */
  kind: string;
  /** the CPU it happened on; -1 when none (a map invariant, a deadlock) */
  cpu: number;
  /** the scheduler tick it was first seen at */
  tick: number;
  message: string;
  /** the kernel task it happened in, when one did */
  task?: number;
  /** what the checker adds: the address and the allocation hit, the event's sequence number */
  data?: Readonly<Record<string, unknown>>;
}

export type Verdict = 'clean' | 'violation';

/** What every driver returns: the verdict, what was found, and the command that reruns it. */
export interface Outcome {
  verdict: Verdict;
  violations: Violation[];
  rerun: string;
}

/** "checker/kind: message", the one-line form reports and campaigns print. */
export function violationLine(v: Violation): string {
  return `${v.checker}/${v.kind}: ${v.message}`;
}
