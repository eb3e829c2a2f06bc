/**
 * One execution of a scenario under an explorer's control: the stress engine with a chooser
 * that asks the explorer which task runs at every point where more than one is ready, and a
 * record of what each step did (the shared objects it read or wrote, the locks it took,
 * released or waited for). The record is what dependence is computed from: two steps depend
 * on each other when they touch the same object and one writes, or use the same lock, which
 * is the relation the race detector sees.
 *
 * Tasks are named so that the name survives into the next execution: "c.n" is CPU c's n-th
 * request, "k.n" the reclaim worker's n-th run.
 */
import { sharedObjectKey } from '../kernel/kcsan.ts';
import type { ActorEvent } from '../sim/events.ts';
import { KWORKER } from '../sim/events.ts';
import { conflicts } from '../sim/policy.ts';
import {
  type EngineHooks,
  type ScenarioPrograms,
  type StressConfig,
  type StressReport,
  runStress,
} from '../stress/engine.ts';

export interface Step {
  /** the task that ran */
  key: string;
  /** what orders it by program: the CPU, or the task itself for the reclaim worker */
  thread: string;
  /** shared objects touched: true when written */
  objects: Map<string, boolean>;
  locks: Set<string>;
}

export interface ChoicePoint {
  /** the ready tasks, in name order */
  enabled: string[];
  chosen: string;
  /** the task that ran the step before, if any */
  last: string | null;
  /** the index of the step this choice started */
  step: number;
}

export interface Execution {
  report: StressReport;
  steps: Step[];
  choices: ChoicePoint[];
}

/** Whether two steps depend on each other: the same lock, or the same object with a write. */
export function dependent(a: Step, b: Step): boolean {
  return conflicts(a, b);
}

export const threadOf = (key: string): string => (key.startsWith('k.') ? key : key.slice(0, key.indexOf('.')));

/** What an explorer says at a choice point: the name of the task to run. */
export type Pick = (enabled: string[], last: string | null, depth: number, steps: readonly Step[]) => string;

export interface ExecuteOptions {
  /** fresh programs for each execution, for a scripted scenario */
  programs?: () => ScenarioPrograms;
  /** bugs to build the allocator with (see EngineHooks) */
  bugs?: EngineHooks['bugs'];
  /** called with the booted allocator (a timeline recorder attaches here) */
  onBoot?: EngineHooks['onBoot'];
  /** sees every event after the execution's own bookkeeping (a timeline recorder) */
  onEvent?: EngineHooks['onEvent'];
}

export async function execute(cfg: StressConfig, pick: Pick, opts: ExecuteOptions = {}): Promise<Execution> {
  const names = new Map<number, string>();
  const counts = new Map<number, number>();
  const steps: Step[] = [];
  const choices: ChoicePoint[] = [];
  let current: Step | null = null;

  const onEvent = (e: ActorEvent): void => {
    opts.onEvent?.(e);
    switch (e.type) {
      case 'arrive': {
        const n = counts.get(e.cpu) ?? 0;
        counts.set(e.cpu, n + 1);
        names.set(e.task, `${e.cpu === KWORKER ? 'k' : e.cpu}.${n}`);
        break;
      }
      case 'run': {
        const key = names.get(e.task) ?? `?${e.task}`;
        current = { key, thread: threadOf(key), objects: new Map(), locks: new Set() };
        steps.push(current);
        break;
      }
      case 'lock':
      case 'unlock':
      case 'block':
        current?.locks.add(e.lock);
        break;
      default:
        break;
    }
  };
  const chooser = (ready: readonly number[]): number => {
    const enabled = ready.map((id) => names.get(id) ?? `?${id}`);
    const sorted = [...enabled].sort(byName);
    const last = steps.length ? steps[steps.length - 1]!.key : null;
    const chosen = pick(sorted, last, choices.length, steps);
    choices.push({ enabled: sorted, chosen, last, step: steps.length });
    const i = enabled.indexOf(chosen);
    return i < 0 ? 0 : i;
  };
  const report = await runStress(
    { ...cfg, failRate: 0, count: false },
    {
      chooser,
      onEvent,
      onAccess: (a) => {
        if (!current) return;
        const o = sharedObjectKey(a.kind, a.chunk, a.index);
        current.objects.set(o, (current.objects.get(o) ?? false) || a.mode !== 'read');
      },
      keepLog: false,
      ...(opts.programs ? { programs: opts.programs() } : {}),
      ...(opts.bugs ? { bugs: opts.bugs } : {}),
      ...(opts.onBoot ? { onBoot: opts.onBoot } : {}),
    },
  );
  return { report, steps, choices };
}

/** Task names in a stable order: by CPU (the reclaim worker last), then by request number. */
export function byName(a: string, b: string): number {
  const [ta, na] = a.split('.');
  const [tb, nb] = b.split('.');
  const ka = ta === 'k' ? 1e9 : Number(ta);
  const kb = tb === 'k' ? 1e9 : Number(tb);
  return ka - kb || Number(na) - Number(nb);
}
