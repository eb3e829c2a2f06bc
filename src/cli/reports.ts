/**
 * What more than one command prints: a stress run's report (stress, replay-run), a campaign's
 * line (stress, merge), and the verdicts of the HTML report's pages (run, stress, replay-run).
 */
import { formatPercpuStats } from '../kernel/stats.ts';
import { cpuCounts } from '../report/html.ts';
import type { TimelineRecorder } from '../report/timeline.ts';
import type { SeedResult, Shard } from '../files/saved.ts';
import type { StressConfig } from '../files/config.ts';
import type { RunReport } from '../smp/run.ts';
import { inOrder } from '../report/run-report.ts';
import type { EngineHooks, StressReport } from '../stress/engine.ts';

/**
 * A stress run's report as text; `replay` is the command that reruns it. For a campaign,
 * `base` is the configuration it was given: the machine of each seed is said as that leaves
 * it (the backend and nodes may change with the seed), and the reported run's as it ran.
 */
export function formatStressReport(r: StressReport, runs: number, replay: string, base?: StressConfig): string {
  const out: string[] = [];
  const c = r.config;
  const mutant = c.mutant ? `, mutant ${c.mutant}` : '';
  if (runs > 1 && base) {
    const backend = base.backend === 'auto' ? 'vm on even seeds and km on odd ones' : base.backend;
    const nodes = base.nodes === 0 ? `1 to ${Math.min(4, base.cpus)} node(s) by seed` : `${base.nodes} node(s)`;
    out.push(`percpu-sim stress: ${c.cpus} CPUs, ${nodes}, ${backend}, policy ${c.policy}${mutant}`);
    out.push(
      `${runs} run(s); ${r.verdict === 'clean' ? 'last' : 'reported'} run: seed ${r.seed} (${c.nodes} node(s), ${c.backend}), ${r.requests} requests, ${r.ticks} scheduler ticks, ${r.ms.toFixed(0)} ms`,
    );
  } else {
    out.push(
      `percpu-sim stress: ${c.cpus} CPUs, ${c.nodes} node(s), ${c.backend}, policy ${c.policy}, seed ${r.seed}${mutant}`,
    );
    out.push(`${runs} run(s); last run: ${r.requests} requests, ${r.ticks} scheduler ticks, ${r.ms.toFixed(0)} ms`);
  }
  // 2.6.36's own lock dependency: worth a line on a clean run, a footnote after a real finding
  const known = r.knownLockIssues
    ? `known 2.6.36 lock dependency (schedule_work under pcpu_lock): seen ${r.knownLockIssues} time(s); --strict makes it a violation`
    : null;
  if (r.verdict === 'clean') {
    if (known) out.push(known);
    out.push('verdict: CLEAN (no violation)');
    return out.join('\n');
  }
  out.push(`verdict: VIOLATION (${r.violations.length}${r.violations.length >= 50 ? '+' : ''})`);
  for (const v of inOrder(r.violations).slice(0, 10))
    out.push(`  [${v.checker}/${v.kind}] tick ${v.tick}${v.cpu >= 0 ? ` cpu ${v.cpu}` : ''}: ${v.message}`);
  if (known) out.push(`(also: ${known})`);
  if (r.history.length) {
    out.push('events before the first violation:');
    for (const h of r.history.slice(-20)) out.push(`  ${h}`);
  }
  out.push(`seed: ${r.seed}`);
  out.push(`replay: ${replay}`);
  return out.join('\n');
}

/** Engine hooks that feed a timeline recorder. */
export function recordHooks(recorder: TimelineRecorder): Pick<EngineHooks, 'onBoot' | 'onEvent'> {
  return { onBoot: (pc) => recorder.attach(pc), onEvent: (e) => recorder.observe(e) };
}

/** The HTML report's verdict of a stress run; its violations go on the timeline. */
export function stressPage(r: StressReport, replay: string, recorder: TimelineRecorder | null = null) {
  // a round on worker threads put its failures on the timeline itself
  for (const v of r.violations)
    if (v.checker !== 'workers')
      recorder?.violation(v.tick, `[${v.checker}/${v.kind}]${v.cpu >= 0 ? ` cpu ${v.cpu}` : ''}: ${v.message}`, v);
  const c = r.config;
  return {
    title: `percpu-sim stress: ${c.cpus} CPUs, ${c.nodes} node(s), ${c.backend}, policy ${c.policy}, granularity ${c.granularity}`,
    verdict: {
      label: r.verdict.toUpperCase(),
      ok: r.verdict === 'clean',
      seed: r.seed,
      replay,
      notes: [`${r.requests} requests, ${r.ticks} scheduler ticks`, ...(c.mutant ? [`mutant: ${c.mutant}`] : [])],
    },
    ...(r.coverage ? { coverage: r.coverage } : {}),
  };
}

/** One line on a campaign: how many seeds, which failed, which were skipped. */
export function campaignLine(c: {
  seeds: readonly SeedResult[];
  shard: Shard | null;
  skipped: number;
  jobs?: number;
  /** the campaign's --duration: the seeds past it were never meant to run */
  durationS?: number;
}): string {
  const bad = c.seeds.filter((x) => x.verdict === 'violation').map((x) => x.seed);
  const range = c.seeds.length
    ? ` (${c.seeds[0]!.seed}..${c.seeds.at(-1)!.seed}${c.shard ? `, shard ${c.shard.index}/${c.shard.count}` : ''})`
    : '';
  return `campaign: ${c.seeds.length} seed(s)${range}${c.jobs && c.jobs > 1 ? ` on ${c.jobs} jobs` : ''}; ${bad.length ? `violations in seed(s) ${bad.join(', ')}` : 'all clean'}${c.durationS ? `; --duration ${c.durationS} s` : c.skipped ? `; ${c.skipped} not run` : ''}`;
}

/** The HTML report's verdict and CPU table of a workload run. */
export function runPage(r: RunReport) {
  const counts = cpuCounts(r.log);
  const byCpu = new Map(counts.rows.map((row) => [row[0] as number, row.slice(1)]));
  const c = r.config;
  return {
    title: `percpu-sim run ${r.workload}: ${c.cpus} CPUs, ${c.nodes} node(s), ${c.backend}`,
    verdict: {
      label: r.verdict.toUpperCase(),
      ok: r.verdict === 'pass',
      seed: r.seed,
      replay: r.rerun,
      notes: [
        `${r.events} allocator events; ${r.violations.length} failure(s)${r.shutdown ? `; ${r.shutdown.leaks.length} leak(s) at shutdown` : ''}`,
        ...(c.mutant ? [`mutant: ${c.mutant}`] : []),
      ],
    },
    ...(r.stats
      ? { stats: `${formatPercpuStats(r.stats)}\n(taken when the workload had run, before teardown and shutdown)` }
      : {}),
    cpuTable: {
      columns: ['cpu', 'node', 'thread', 'status', 'ms', ...counts.columns.slice(1)],
      rows: r.cpus.map((x) => [
        x.cpu,
        x.node,
        x.threadId,
        x.ok ? 'ok' : (x.error ?? 'failed'),
        Math.round(x.ms),
        ...(byCpu.get(x.cpu) ?? counts.columns.slice(1).map(() => 0)),
      ]),
    },
  };
}
