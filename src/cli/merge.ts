/**
 * `percpu-sim merge`: joins the --json reports of a campaign's shards (stress --runs N
 * --shard K/M --json) into the report of the whole campaign, so that a campaign can spread
 * over the machines of a batch system and be read as one.
 */
import { readFileSync } from 'node:fs';
import {
  type Campaign,
  CampaignReportSchema,
  type MergedCampaign,
  MergedCampaignSchema,
  schemaErrors,
} from '../files/saved.ts';
import { stressCommand } from '../files/rerun.ts';
import { addCoverage, coverageLines, emptyCoverage } from '../check/coverage.ts';
import { campaignSeeds, workerRoundConfig } from '../stress/campaign.ts';
import { type Command, UsageError, escapeControl, parse, readStdin } from './common.ts';
import { campaignLine } from './reports.ts';

/** The first field (a dotted path) where two values differ, with both values as JSON. */
function firstDifference(a: unknown, b: unknown, path = ''): { path: string; ours: string; theirs: string } | null {
  if (JSON.stringify(a) === JSON.stringify(b)) return null;
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ra), ...Object.keys(rb)])]) {
      const d = firstDifference(ra[k], rb[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  const show = (v: unknown) => (v === undefined ? 'absent' : JSON.stringify(v));
  return { path, ours: show(a), theirs: show(b) };
}

/** Joins campaign reports; throws UsageError when they are not parts of one campaign. */
export function mergeCampaigns(parts: { file: string; campaign: Campaign }[]): MergedCampaign {
  const first = parts[0]!;
  const key = (c: Campaign) => JSON.stringify({ config: c.config, runs: c.runs });
  const seen = new Map<number, string>();
  const seeds: Campaign['seeds'] = [];
  for (const p of parts) {
    if (key(p.campaign) !== key(first.campaign)) {
      const d = firstDifference(
        { runs: first.campaign.runs, config: first.campaign.config },
        {
          runs: p.campaign.runs,
          config: p.campaign.config,
        },
      );
      throw new UsageError(
        `${escapeControl(p.file)} is a different campaign from ${escapeControl(first.file)}: ${d ? `${d.path} is ${d.theirs} in ${escapeControl(p.file)} and ${d.ours} in ${escapeControl(first.file)}` : 'their configurations differ'} (merge shards of one stress command)`,
      );
    }
    if (p.campaign.shard && first.campaign.shard && p.campaign.shard.count !== first.campaign.shard.count)
      throw new UsageError(
        `${escapeControl(p.file)} is shard ${p.campaign.shard.index}/${p.campaign.shard.count}, ${escapeControl(first.file)} shard ${first.campaign.shard.index}/${first.campaign.shard.count}: shards of one campaign share N`,
      );
    // a seed the campaign's own slice does not hold was not run by that command: credit it to nobody
    const own = new Set(campaignSeeds(p.campaign.base, p.campaign.runs, p.campaign.shard));
    for (const s of p.campaign.seeds) {
      if (!own.has(s.seed))
        throw new UsageError(
          `${escapeControl(p.file)} holds seed ${s.seed}, which is not one of the ${p.campaign.shard ? `seeds of shard ${p.campaign.shard.index}/${p.campaign.shard.count} of the ` : ''}--runs ${p.campaign.runs} seeds from ${p.campaign.base}: the report is not what stress wrote`,
        );
      const other = seen.get(s.seed);
      if (other !== undefined)
        throw new UsageError(
          `seed ${s.seed} is in both ${escapeControl(other)} and ${escapeControl(p.file)}: shards are disjoint, so one report is given twice or the slices overlap`,
        );
      seen.set(s.seed, p.file);
      seeds.push(s);
    }
  }
  seeds.sort((a, b) => a.seed - b.seed);
  const c = first.campaign;
  const missing = campaignSeeds(c.base, c.runs, null).filter((s) => !seen.has(s));
  return MergedCampaignSchema.parse({
    format: 'percpu-sim-campaign',
    version: 1,
    base: c.base,
    runs: c.runs,
    shard: null,
    jobs: Math.max(...parts.map((p) => p.campaign.jobs)),
    keepGoing: parts.every((p) => p.campaign.keepGoing),
    config: c.config,
    seeds,
    skipped: parts.reduce((a, p) => a + p.campaign.skipped, 0),
    // every part's, summed; unknown when a part was made before coverage was recorded
    coverage: parts.every((p) => p.campaign.coverage)
      ? parts.reduce((c, p) => addCoverage(c, p.campaign.coverage!), emptyCoverage())
      : null,
    merged: parts.length,
    missing,
  });
}

export const merge: Command = {
  summary: "join the --json reports of a stress campaign's shards into one report",
  help: `Usage: percpu-sim merge REPORT... [--json]

Joins the reports of the shards of one stress campaign into the report of the whole: every
seed once, in order, with its verdict. Each REPORT is what "percpu-sim stress --runs N
--shard K/M --json" printed (the shards may come from different machines), or - for one
read from standard input; whole campaigns of the same command merge too.

The reports must come from the same command: the same configuration, --runs and shard count.
A seed in two reports is an error. Seeds no report holds are listed as missing.

Options:
  --json       print the merged campaign as JSON (the shape of a campaign in stress --json)
  -h, --help   this text

Exit status: 0 when every seed is clean and none is missing, 1 when a seed found a violation,
2 for bad usage, unreadable or inconsistent reports, or missing seeds.

Example, a campaign of 1000 seeds in 4 slices (on 4 machines, or a CI matrix):
  percpu-sim stress --runs 1000 --shard 1/4 --json > shard-1.json     # ... to --shard 4/4
  percpu-sim merge shard-*.json`,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
    if (!positionals.length) throw new UsageError('merge needs at least one REPORT (the --json output of stress)');
    if (positionals.filter((f) => f === '-').length > 1)
      throw new UsageError('- (standard input) is given more than once; it holds one report');
    const parts = [];
    for (const given of positionals) {
      const file = given === '-' ? '<stdin>' : given;
      let raw: unknown;
      try {
        raw = JSON.parse(given === '-' ? await readStdin() : readFileSync(given, 'utf8'));
      } catch (e) {
        throw new UsageError(`cannot read ${escapeControl(file)}: ${(e as Error).message}`);
      }
      const parsed = CampaignReportSchema.safeParse(raw);
      if (!parsed.success)
        throw new UsageError(
          `${escapeControl(file)} is not a stress --json report with a campaign: ${schemaErrors(parsed.error)}`,
        );
      parts.push({ file, campaign: parsed.data.campaign });
    }
    const m = mergeCampaigns(parts);
    const bad = m.seeds.filter((s) => s.verdict === 'violation');
    if (values.json) process.stdout.write(JSON.stringify(m, null, 2) + '\n');
    else {
      const out = [
        `merged ${m.merged} report(s) of one campaign: ${m.runs} seed(s) from seed ${m.base}${m.config.mutant ? `, mutant ${m.config.mutant}` : ''}`,
        campaignLine({ seeds: m.seeds, shard: null, skipped: m.skipped }),
        ...(m.coverage ? coverageLines(m.coverage, { never: 6 }) : ['coverage: not in every report']),
      ];
      if (m.missing.length)
        out.push(
          `missing: ${m.missing.length} seed(s) of the campaign are in no report (${m.missing.slice(0, 10).join(', ')}${m.missing.length > 10 ? ', ...' : ''})`,
        );
      for (const s of bad)
        out.push(
          `  seed ${s.seed}${s.workers ? ' (worker threads)' : ''}: ${s.first[0] ?? 'violation'}`,
          `    replay: ${s.workers ? stressCommand(workerRoundConfig({ ...m.config, seed: s.seed }), { workers: true }) : stressCommand({ ...m.config, seed: s.seed })}`,
        );
      out.push(
        `verdict: ${bad.length ? `VIOLATION in ${bad.length} seed(s)` : m.missing.length ? 'INCOMPLETE' : 'CLEAN'}`,
      );
      process.stdout.write(out.join('\n') + '\n');
    }
    return bad.length ? 1 : m.missing.length ? 2 : 0;
  },
};
