/**
 * `percpu-sim stress --explore` and `--schedule` (part of the stress command): systematic
 * exploration of a named scenario (or of the stress program itself, kept small), with DPOR
 * unless `--no-reduction`, and the exact rerun of one explored schedule.
 */
import type { StressConfig } from '../files/config.ts';
import { stressCommand } from '../files/rerun.ts';
import { writeSavedStress } from '../files/saved.ts';
import type { ExecuteOptions } from '../explore/execute.ts';
import { type ExploreResult, explore, runSchedule } from '../explore/dpor.ts';
import { SCENARIOS, SCENARIO_NAMES, type Scenario, scenario } from '../explore/scenarios.ts';
import { int, interrupted, num, onInterrupt, usage } from './common.ts';
import type { Outputs } from './outputs.ts';

/** The scenario named by --scenario, and the configuration it runs on (flags given win). */
export function exploreSetup(
  values: Record<string, unknown>,
  cfg: StressConfig,
): { sc: Scenario | null; cfg: StressConfig; opts: ExecuteOptions } {
  const name = values.scenario;
  const sc =
    typeof name === 'string'
      ? (scenario(name) ?? usage(`--scenario must be one of ${SCENARIO_NAMES.join(', ')} (got "${name}")`))
      : null;
  const out: StressConfig = { ...cfg, args: { ...cfg.args } };
  // exploration multiplies with every preemption point: a scenario is explored at every
  // access by default, the random program (bigger) at sleeping points only
  if (values.granularity === undefined) out.granularity = sc ? 'access' : 'sleep';
  if (values['early-ops'] === undefined) out.args.earlyOps = 0;
  if (sc) {
    Object.assign(out, sc.config);
    if (values.backend === undefined) out.backend = 'vm';
    if (values.nodes === undefined && values['cpu-nodes'] === undefined) out.nodes = 1;
    if (values.memory === undefined) out.memoryMiB = 16;
    if (values.cpus !== undefined || values['cpu-nodes'] !== undefined) out.cpus = cfg.cpus;
  }
  return { sc, cfg: out, opts: sc ? { programs: sc.programs } : {} };
}

export async function exploreMain(
  values: Record<string, unknown>,
  base: StressConfig,
  bar: (phase: string, done: number, total: number) => void,
  json: boolean,
  outputs: Outputs,
  savePath: string | undefined,
): Promise<number> {
  const { sc, cfg, opts } = exploreSetup(values, base);
  const k = int('--preemptions', values.preemptions, 0, 10, sc?.preemptions ?? 2);
  const max = int('--max-schedules', values['max-schedules'], 1, 10_000_000, 100_000);
  const secs = num('--max-seconds', values['max-seconds'], 1, 86_400, 600);
  const reduction = values['no-reduction'] !== true;
  const t0 = Date.now();
  let explored = 0;
  const stop = new AbortController();
  onInterrupt(
    'stress',
    () =>
      `${explored} schedule(s) explored${sc ? ` of scenario ${sc.name}` : ''}, rerun with: ${stressCommand(cfg, { scenario: sc?.name ?? null, explore: { preemptions: k, reduction } })}`,
    { drain: stop },
  );
  const res: ExploreResult = await explore(cfg, {
    ...opts,
    signal: stop.signal,
    preemptions: k,
    maxSchedules: max,
    maxSeconds: secs,
    reduction,
    onProgress: (n, depth, found) => {
      explored = n;
      // how many schedules a bound holds is not known before the end: --max-schedules is only a cap
      bar(
        `explored ${n} schedule(s) (at most ${max}), ${depth} choice points deep, ${found ? `${found} violation kind(s) found` : 'no violation yet'}, ${Math.floor((Date.now() - t0) / 1000)} s`,
        n,
        0,
      );
    },
  });
  if (res.stoppedBy !== 'interrupt') bar('done', 1, 1);
  const violations = res.violations.map((v) => ({
    ...v,
    replay: stressCommand(cfg, { scenario: sc?.name ?? null, schedule: v.schedule }),
  }));
  if (json) {
    process.stdout.write(
      JSON.stringify(
        {
          scenario: sc?.name ?? null,
          reduction: reduction ? 'dpor' : 'none',
          preemptions: k,
          verdict: violations.length ? 'violation' : res.complete ? 'clean' : 'incomplete',
          schedules: res.schedules,
          complete: res.complete,
          stoppedBy: res.stoppedBy,
          maxDepth: res.maxDepth,
          violations,
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    const what = sc ? `scenario ${sc.name}` : `the stress program (${cfg.cpus} CPUs x ${cfg.args.ops} operations)`;
    const how = reduction ? 'with partial-order reduction (DPOR, sleep sets)' : 'without reduction';
    const end = res.complete
      ? 'every schedule within the bound'
      : res.stoppedBy === 'interrupt'
        ? `stopped by ${interrupted() ?? 'a signal'}, incomplete`
        : `stopped by --max-${res.stoppedBy === 'time' ? 'seconds' : 'schedules'}`;
    const out = [
      `explored ${what} ${how}: ${res.schedules} schedule(s), up to ${res.maxDepth} choice points, preemption bound ${k}; ${end}`,
    ];
    // only a complete exploration shows that no schedule within the bound goes wrong
    if (!violations.length)
      out.push(res.complete ? 'verdict: CLEAN' : `verdict: no violation in ${res.schedules} schedule(s), incomplete`);
    else {
      out.push(`verdict: VIOLATION (${violations.length} kind${violations.length > 1 ? 's' : ''})`);
      for (const v of violations)
        out.push(
          `  [${v.checker}/${v.kind}] ${v.message}`,
          `    schedule: ${v.schedule.join(',') || '(the default)'}`,
          `    replay: ${v.replay}`,
        );
    }
    process.stdout.write(out.join('\n') + '\n');
  }
  if (violations.length) {
    const first = violations[0]!;
    outputs.write('--save', savePath, (p) =>
      writeSavedStress(p, {
        config: cfg,
        scenario: sc?.name ?? null,
        schedule: first.schedule,
        verdict: 'violation',
        violations: [{ checker: first.checker, kind: first.kind, cpu: -1, tick: 0, message: first.message }],
      }),
    );
  }
  return outputs.finish(violations.length ? 1 : 0);
}

/** `--schedule a,b,c`: the task names, one per choice point ("-" or nothing: the default order). */
export function parseSchedule(text: string): string[] {
  const schedule = text === '-' || text === '' ? [] : text.split(',').map((x) => x.trim());
  for (const t of schedule)
    if (!/^(\d+|k)\.\d+$/.test(t))
      usage(
        `--schedule takes task names such as 0.3 (CPU 0's fourth request) or k.0 (the reclaim worker), comma separated (got "${t}")`,
      );
  return schedule;
}

/** `--schedule a,b,c`: reruns one explored schedule and reports like a stress run. */
export async function scheduleMain(values: Record<string, unknown>, base: StressConfig, extra: ExecuteOptions = {}) {
  const { sc, cfg, opts } = exploreSetup(values, base);
  const schedule = parseSchedule(String(values.schedule));
  for (const t of schedule) {
    const cpu = t.split('.')[0]!;
    if (cpu !== 'k' && Number(cpu) >= cfg.cpus)
      usage(
        `--schedule: task "${t}" is on CPU ${cpu}, and the machine has CPUs 0 to ${cfg.cpus - 1} (--cpus ${cfg.cpus})`,
      );
  }
  const exec = await runSchedule(cfg, schedule, { ...opts, ...extra });
  // a name the run never offered would otherwise fall back to the default order and pass as clean
  if (exec.unfollowed)
    usage(`--schedule names a task that was not ready: ${exec.unfollowed} (rerun the schedule an exploration printed)`);
  return {
    report: exec.report,
    schedule,
    sc,
    cfg,
    replay: stressCommand(cfg, { scenario: sc?.name ?? null, schedule }),
  };
}

/** The scenarios for --help, each description wrapped under its name. */
export function scenariosHelp(width = 92): string {
  return SCENARIOS.map((s) => {
    const lines: string[] = [];
    let line = `  ${s.name.padEnd(20)} `;
    for (const word of s.description.split(' ')) {
      if (line.length + word.length > width && line.trim()) {
        lines.push(line.trimEnd());
        line = ' '.repeat(23);
      }
      line += `${word} `;
    }
    lines.push(line.trimEnd());
    return lines.join('\n');
  }).join('\n');
}
