/** `percpu-sim replay-run`: replay a saved run and say whether it ends the same way. */
import { violationLine } from '../check/violation.ts';
import { readFileSync } from 'node:fs';
import { SavedRunLogSchema, SavedStressSchema, schemaErrors } from '../files/saved.ts';
import { replayRunCommand, stressCommand } from '../files/rerun.ts';
import { runSchedule } from '../explore/dpor.ts';
import { scenario } from '../explore/scenarios.ts';
import { replayControlled, replayRunLog } from '../smp/run-log.ts';
import { runStress } from '../stress/engine.ts';
import {
  type Command,
  UsageError,
  escapeControl,
  onInterrupt,
  parse,
  progressBar,
  readStdin,
  usage,
} from './common.ts';
import { Outputs } from './outputs.ts';
import { formatStressReport, recordHooks, stressPage } from './reports.ts';
import { HTML_OPTION, TRACE_OPTION, VISUALS_HELP, Visuals } from './visuals.ts';

export const replayRun: Command = {
  summary: 'replay a run saved with stress --save or run --save, and say whether it ends the same way',
  help: `Usage: percpu-sim replay-run FILE [--json] [--trace FILE] [--html FILE]

Replays a saved run (FILE, or - for standard input) and reports whether it ends the same way.

  - A stress run (percpu-sim stress --save FILE) is rerun from its configuration, seed and,
    for an explored schedule, its choices; the verdict and the first violation must match.
  - A run on worker threads (percpu-sim run --save FILE, or stress --workers --save FILE) is
    replayed from its event log without any worker: every allocator reply and the final
    allocator state must match, and every operation is held against 2.6.36.
  - A controlled run (stress --controlled --save FILE, run --controlled --save FILE) runs
    again on worker threads along its recorded schedule, data path included: the same
    violations and the same final memory hash.

Options:
${VISUALS_HELP}
  --json              print the result as JSON ("reproduced": true or false)
  -h, --help          this text

Exit status, the same for every kind of file: 0 when the replay reproduces a run that was
clean; 1 when it shows a failure: the saved run's failure again, or a replay that does not
end as the saved run did, or (a run log) an operation 2.6.36 would do otherwise; 3 when it
reproduces a run that timed out; 2 for bad usage or a file that is not a saved run.

Examples:
  percpu-sim stress --mutant extend-stale-walk --duration 60 --save bug.json
  percpu-sim replay-run bug.json           # exit 1: the same violation, reproduced
  percpu-sim run churn --save run.json && percpu-sim replay-run run.json
  gunzip -c run.json.gz | percpu-sim replay-run -`,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' }, ...TRACE_OPTION, ...HTML_OPTION });
    if (positionals.length !== 1) throw new UsageError('replay-run needs exactly one FILE');
    const out = new Outputs('replay-run');
    const visuals = new Visuals(out, values);
    return out.finish(await replayRunMain(positionals[0]!, values.json === true, visuals));
  },
};

async function replayRunMain(file: string, json: boolean, visuals: Visuals): Promise<number> {
  let raw: unknown;
  try {
    raw = JSON.parse(file === '-' ? await readStdin() : readFileSync(file, 'utf8'));
  } catch (e) {
    return usage(`cannot read ${shownName(file)}: ${(e as Error).message}`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format === 'percpu-sim-run-log') {
    const parsed = SavedRunLogSchema.safeParse(raw);
    if (!parsed.success) return usage(`${shownName(file)} is not a valid run log: ${schemaErrors(parsed.error)}`);
    const log = parsed.data;
    if (log.controlled) {
      // a controlled run replays whole, on worker threads, along its schedule
      const r = await replayControlled(log);
      const lines = r.report.violations.map(violationLine);
      if (json)
        process.stdout.write(
          JSON.stringify(
            {
              reproduced: r.reproduced,
              differences: r.differences,
              violations: lines,
              memoryHash: r.report.controlled?.memoryHash,
            },
            null,
            2,
          ) + '\n',
        );
      else
        process.stdout.write(
          `replayed the controlled run of ${log.workload} (seed ${log.seed}) along its ${log.controlled.schedule.length} recorded choices\n` +
            lines.map((l) => `  ${l}\n`).join('') +
            (r.reproduced
              ? `reproduced: the same ${lines.length} violation(s) and the same final memory (hash ${log.controlled.memoryHash})\n`
              : `NOT reproduced:\n${r.differences
                  .slice(0, 10)
                  .map((d) => `  ${d}\n`)
                  .join('')}`),
        );
      return r.reproduced ? (lines.length ? 1 : 0) : 1;
    }
    const recorder = visuals.fresh();
    const r = replayRunLog(log, recorder ?? undefined);
    const same = r.mismatches.length === 0 && r.sameFinalState;
    for (const m of r.mismatches) recorder?.violation(null, `replay differs: ${m}`);
    for (const v of r.violations) recorder?.violation(v.tick, violationLine(v), v);
    visuals.write({
      title: `percpu-sim replay-run ${shownName(file)}: ${log.workload}, ${log.config.cpus} CPUs, without workers`,
      verdict: {
        label: same ? 'REPRODUCED' : 'NOT REPRODUCED',
        ok: same,
        seed: log.seed,
        replay: replayRunCommand(file),
        notes: [
          `${r.requests} allocator requests replayed; the recorded run's verdict was ${log.verdict}`,
          ...(r.sameFinalState ? [] : ['the final allocator state differs from the recording']),
        ],
      },
    });
    if (json) process.stdout.write(JSON.stringify({ reproduced: same, ...r }, null, 2) + '\n');
    else
      process.stdout.write(
        `replayed ${r.requests} allocator requests of ${log.workload} (seed ${log.seed}) without workers\n` +
          (r.mismatches.length
            ? r.mismatches
                .slice(0, 10)
                .map((m) => `  ${m}\n`)
                .join('')
            : '') +
          `${same ? 'reproduced: the same replies and the same final allocator state' : `NOT reproduced: ${r.mismatches.length} different replies${r.sameFinalState ? '' : ', a different final state'}`}\n` +
          (log.verdict === 'pass' ? '' : `the saved run's verdict: ${log.verdict.toUpperCase()}\n`) +
          (r.violations.length
            ? `held against 2.6.36, the run parts from it:\n${r.violations.map((v) => `  ${violationLine(v)}\n`).join('')}`
            : 'held against 2.6.36: every operation as 2.6.36 does it\n'),
      );
    if (!same || r.violations.length) return 1;
    return log.verdict === 'pass' ? 0 : log.verdict === 'timeout' ? 3 : 1;
  }
  if (format !== 'percpu-sim-stress')
    return usage(
      `${shownName(file)} is not a saved run: its "format" is ${JSON.stringify(format ?? null)}, not "percpu-sim-stress" (stress --save) or "percpu-sim-run-log" (run --save)`,
    );
  const parsed = SavedStressSchema.safeParse(raw);
  if (!parsed.success)
    return usage(`${shownName(file)} is not a valid saved stress run: ${schemaErrors(parsed.error)}`);
  const saved = parsed.data;
  if (saved.version === 1 && saved.schedule)
    return usage(
      `${shownName(file)} holds a schedule of an older exploration (choice numbers); explore again to get one by task names`,
    );
  const sc = saved.scenario ? scenario(saved.scenario) : null;
  if (saved.scenario && !sc)
    return usage(`${shownName(file)}: scenario: this version has no scenario "${saved.scenario}"`);
  const config = saved.config;
  const bar = progressBar(json);
  onInterrupt(
    'replay-run',
    () => `replaying ${shownName(file)} (seed ${config.seed}); rerun with: ${replayRunCommand(file)}`,
  );
  const recorder = visuals.fresh();
  const hooks = recorder ? recordHooks(recorder) : {};
  const schedule = saved.schedule as string[] | null;
  const scheduled = schedule
    ? await runSchedule(config, schedule, { ...(sc ? { programs: sc.programs } : {}), ...hooks })
    : null;
  if (scheduled?.unfollowed)
    return usage(`${shownName(file)}: schedule: names a task that was not ready: ${scheduled.unfollowed}`);
  const r = scheduled
    ? scheduled.report
    : await runStress(config, { onProgress: (d, t) => bar(`replaying seed ${config.seed}`, d, t), ...hooks });
  bar('done', 1, 1);
  const replay = stressCommand(config, { scenario: saved.scenario, schedule, workers: r.workers });
  visuals.write(stressPage(r, replayRunCommand(file), recorder));
  const first = (x: readonly { checker: string; kind: string; message: string }[]) =>
    x[0] ? `${x[0].checker}/${x[0].kind}: ${x[0].message}` : 'none';
  const same = r.verdict === saved.verdict && first(r.violations) === first(saved.violations);
  if (json)
    process.stdout.write(
      JSON.stringify(
        {
          reproduced: same,
          saved: { verdict: saved.verdict, first: first(saved.violations) },
          replayed: { verdict: r.verdict, first: first(r.violations) },
        },
        null,
        2,
      ) + '\n',
    );
  else
    process.stdout.write(
      `${formatStressReport(r, 1, replay)}\n${same ? 'reproduced: the replay ends exactly as the saved run did' : `NOT reproduced: the saved run ended with ${first(saved.violations)}`}\n`,
    );
  return same && r.verdict === 'clean' ? 0 : 1;
}

function shownName(file: string): string {
  return file === '-' ? '<stdin>' : escapeControl(file);
}
