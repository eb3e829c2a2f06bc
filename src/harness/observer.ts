/**
 * What a run tells an observer that watches it whole (the timeline recorder of --trace and
 * --html implements this): the booted allocator, every event, the workload's phases, and
 * what was found. Drivers take the interface, so they never depend on the reports.
 */
import type { Percpu } from '../kernel/percpu.ts';
import type { ActorEvent } from '../sim/events.ts';
import type { Violation } from '../check/violation.ts';

export interface PhaseSpan {
  cpu: number;
  name: string;
  /** the phase began after the event with this sequence number */
  afterSeq: number;
  /** and ended with the event of this one */
  untilSeq: number;
}

export interface RunObserver {
  attach(pc: Percpu): void;
  observe(e: ActorEvent): void;
  /** the sequence number of the last event seen, to mark where a phase starts and ends */
  mark(): number;
  phase(p: PhaseSpan): void;
  /** a finding: its line, and the finding itself when there is one (its CPU, task and data) */
  violation(tick: number | null, text: string, v?: Violation): void;
}
