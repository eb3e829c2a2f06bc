/**
 * Campaigns: seeds in parallel (--jobs), disjoint shards (--shard K/N) and merge. The union of
 * the shards must be the same seeds with the same verdicts as the whole campaign in one run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { campaignSeeds, onWorkers } from '../../src/stress/campaign.ts';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
const dir = mkdtempSync(join(tmpdir(), 'percpu-campaign-'));
// a historical bug that some seeds of this campaign hit and others do not
const CAMPAIGN = ['stress', '--runs', '6', '--ops', '100', '--mutant', 'populate-fail-keeps-area'];

interface SeedLine {
  seed: number;
  verdict: string;
  workers: boolean;
  first: string[];
}
const seedsOf = (stdout: string): SeedLine[] =>
  (JSON.parse(stdout) as { campaign: { seeds: SeedLine[] } }).campaign.seeds;
/** What must agree between runs: worker rounds run on real threads, so only their verdict. */
const outcome = (s: SeedLine) => ({
  seed: s.seed,
  verdict: s.verdict,
  workers: s.workers,
  first: s.workers ? null : s.first,
});

describe('campaign seeds', () => {
  it('a shard is every N-th seed of the campaign; the shards are disjoint and cover it', () => {
    expect(campaignSeeds(10, 7, null)).toEqual([10, 11, 12, 13, 14, 15, 16]);
    expect(campaignSeeds(10, 7, { index: 1, count: 3 })).toEqual([10, 13, 16]);
    expect(campaignSeeds(10, 7, { index: 2, count: 3 })).toEqual([11, 14]);
    expect(campaignSeeds(10, 7, { index: 3, count: 3 })).toEqual([12, 15]);
    expect(campaignSeeds(2 ** 32 - 2, 3, null)).toEqual([4294967294, 4294967295, 0]);
    // which seeds run on worker threads depends on the seed's place in the campaign only
    expect([10, 11, 12, 13, 14, 15, 16, 17, 18, 19].filter((s) => onWorkers(10, s))).toEqual([13, 18]);
  });
});

describe('stress --jobs, --shard and merge', () => {
  it('the shards, each on two jobs, merge into the same seeds and verdicts as the whole campaign on one', () => {
    const whole = cli(...CAMPAIGN, '--keep-going', '--jobs', '1', '--json');
    expect(whole.status).toBe(1);
    const want = seedsOf(whole.stdout);
    expect(want.map((s) => s.seed)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(want.map((s) => s.verdict)).toContain('clean');
    expect(want.map((s) => s.verdict)).toContain('violation');

    const files = [1, 2, 3].map((k) => {
      const r = cli(...CAMPAIGN, '--shard', `${k}/3`, '--jobs', '2', '--json');
      expect([0, 1]).toContain(r.status);
      const f = join(dir, `shard-${k}.json`);
      writeFileSync(f, r.stdout);
      expect(seedsOf(r.stdout).map((s) => s.seed)).toEqual([k, k + 3]);
      return f;
    });
    const merged = cli('merge', ...files, '--json');
    expect(merged.status).toBe(1);
    const m = JSON.parse(merged.stdout) as {
      seeds: SeedLine[];
      missing: number[];
      merged: number;
      runs: number;
      coverage: { overlaps: Record<string, number> };
    };
    expect(m.merged).toBe(3);
    expect(m.missing).toEqual([]);
    expect(m.seeds.map(outcome)).toEqual(want.map(outcome));
    // the shards' coverage sums to the whole campaign's, count for count
    const wholeCoverage = (JSON.parse(whole.stdout) as { campaign: { coverage: typeof m.coverage } }).campaign.coverage;
    expect(Object.keys(wholeCoverage.overlaps)).toContain('free_percpu|pcpu_alloc');
    expect(m.coverage).toEqual(wholeCoverage);

    const text = cli('merge', ...files);
    const bad = want.filter((s) => s.verdict === 'violation').map((s) => s.seed);
    expect(text.stdout).toContain(`campaign: 6 seed(s) (1..6); violations in seed(s) ${bad.join(', ')}`);
    expect(text.stdout).toContain(`verdict: VIOLATION in ${bad.length} seed(s)`);
    expect(text.stdout).toMatch(
      new RegExp(`replay: percpu-sim stress --seed ${bad[0]} .*--mutant populate-fail-keeps-area`),
    );

    // a missing shard is reported, and the status says the campaign is incomplete
    const part = cli('merge', files[0]!, files[2]!);
    expect(part.stdout).toContain('missing: 2 seed(s) of the campaign are in no report (2, 5)');
    // the same shard twice is refused
    const twice = cli('merge', files[0]!, files[0]!);
    expect(twice.status).toBe(2);
    expect(twice.stderr).toContain(
      `percpu-sim merge: seed 1 is in both ${files[0]} and ${files[0]}: shards are disjoint`,
    );
  }, 120_000);

  it('refuses reports of different campaigns, files that are not reports, and shards without --runs', () => {
    const a = cli('stress', '--runs', '2', '--ops', '50', '--shard', '1/2', '--json');
    const b = cli('stress', '--runs', '2', '--ops', '60', '--shard', '2/2', '--json');
    expect(a.status).toBe(0);
    const fa = join(dir, 'a.json');
    const fb = join(dir, 'b.json');
    writeFileSync(fa, a.stdout);
    writeFileSync(fb, b.stdout);
    const diff = cli('merge', fa, fb);
    expect(diff.status).toBe(2);
    expect(diff.stderr).toContain(
      `${fb} is a different campaign from ${fa}: config.args.ops is 60 in ${fb} and 50 in ${fa} (merge shards of one stress command)`,
    );
    const junk = join(dir, 'junk.json');
    writeFileSync(junk, '{"campaign":{"format":"percpu-sim-campaign","version":1}}');
    const j = cli('merge', junk);
    expect(j.status).toBe(2);
    expect(j.stderr).toContain(`${junk} is not a stress --json report with a campaign: campaign.base: Required`);
    expect(cli('merge').stderr).toContain('merge needs at least one REPORT');
    const noRuns = cli('stress', '--shard', '1/2');
    expect(noRuns.status).toBe(2);
    expect(noRuns.stderr).toContain('--shard slices a campaign of --runs N seeds; give --runs');
    expect(cli('stress', '--runs', '4', '--shard', '3/2').stderr).toContain('--shard 3/2: K must be in [1, N]');
    expect(cli('stress', '--explore', '--jobs', '2').stderr).toContain(
      '--jobs is for a campaign of seeds (--runs or --duration), not for --workers, --explore or --schedule',
    );
  }, 60_000);
});
