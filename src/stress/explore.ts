/**
 * Systematic exploration of a small scenario (2 or 3 CPUs, a few operations each): every
 * order in which ready tasks can resume at the sleeping points, depth first, bounded by a
 * preemption budget in the manner of CHESS and loom. A "preemption" here is any choice other
 * than the default (the ready task with the lowest id), so budget 0 is the one default
 * schedule, and each unit of budget lets one more decision go another way.
 */
import { type StressConfig, type StressReport, runStress } from './engine.ts';

export interface ExploreResult {
  schedules: number;
  /** every schedule within the budget was run */
  complete: boolean;
  /** the first schedule that found a violation: its choices, and its report */
  failing: { schedule: number[]; report: StressReport } | null;
}

export async function explore(
  cfg: StressConfig,
  preemptions: number,
  maxSchedules: number,
  onSchedule?: (n: number) => void,
): Promise<ExploreResult> {
  let prefix: number[] = [];
  let schedules = 0;
  for (;;) {
    const chosen: number[] = [];
    const options: number[] = [];
    const chooser = (ready: readonly number[]): number => {
      const k = chosen.length;
      const c = k < prefix.length ? Math.min(prefix[k]!, ready.length - 1) : 0;
      chosen.push(c);
      options.push(ready.length);
      return c;
    };
    const report = await runStress({ ...cfg, failRate: 0, count: false }, { chooser });
    schedules++;
    onSchedule?.(schedules);
    if (report.verdict === 'violation') return { schedules, complete: false, failing: { schedule: chosen, report } };
    if (schedules >= maxSchedules) return { schedules, complete: false, failing: null };
    // the deepest decision that can still go another way within the budget
    let k = chosen.length - 1;
    const used = (upto: number): number => chosen.slice(0, upto).filter((c) => c !== 0).length;
    while (k >= 0 && (chosen[k]! + 1 >= options[k]! || used(k) + 1 > preemptions)) k--;
    if (k < 0) return { schedules, complete: true, failing: null };
    prefix = [...chosen.slice(0, k), chosen[k]! + 1];
  }
}

/** Reruns one schedule (the choices an exploration printed). */
export function runSchedule(cfg: StressConfig, schedule: readonly number[]): Promise<StressReport> {
  let k = 0;
  return runStress({ ...cfg, failRate: 0, count: false }, { chooser: (ready) => Math.min(schedule[k++] ?? 0, ready.length - 1), keepLog: true });
}
