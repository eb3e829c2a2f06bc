/**
 * merge credits only seeds the reporting command ran (its --runs, and its shard's slice), and
 * names the field in which two reports' configurations differ.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 90_000 });

let dir = '';
const shard = (name: string, ...args: string[]): string => {
  const r = cli('stress', '--ops', '20', '--json', ...args);
  expect(r.status).toBe(0);
  const p = join(dir, name);
  writeFileSync(p, r.stdout);
  return p;
};
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'percpu-sim-merge-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('merge', () => {
  it('refuses a seed outside the campaign, or outside the shard that reports it', () => {
    const one = shard('one.json', '--runs', '4', '--shard', '1/2');
    const two = shard('two.json', '--runs', '4', '--shard', '2/2');
    expect(cli('merge', one, two).status).toBe(0);
    const report = JSON.parse(readFileSync(one, 'utf8')) as { campaign: { seeds: { seed: number }[] } };
    const forged = (seed: number): string => {
      const copy = structuredClone(report);
      copy.campaign.seeds.push({ ...copy.campaign.seeds[0]!, seed });
      const p = join(dir, `forged-${seed}.json`);
      writeFileSync(p, JSON.stringify(copy));
      return p;
    };
    const outside = forged(9);
    let r = cli('merge', outside, two);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `percpu-sim merge: ${outside} holds seed 9, which is not one of the seeds of shard 1/2 of the --runs 4 seeds from 1: the report is not what stress wrote`,
    );
    // seed 2 is in the campaign, but shard 1/2 runs 1 and 3: crediting it would hide that shard 2/2 is missing
    const other = forged(2);
    r = cli('merge', other);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `percpu-sim merge: ${other} holds seed 2, which is not one of the seeds of shard 1/2 of the --runs 4 seeds from 1: the report is not what stress wrote`,
    );
  });

  it('names the field in which two configurations differ', () => {
    const one = shard('a.json', '--runs', '4', '--shard', '1/2');
    const ops = shard('b.json', '--runs', '4', '--shard', '2/2', '--ops', '30');
    const r = cli('merge', one, ops);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `percpu-sim merge: ${ops} is a different campaign from ${one}: config.args.ops is 30 in ${ops} and 20 in ${one} (merge shards of one stress command)`,
    );
    const runs = shard('c.json', '--runs', '6', '--shard', '2/2');
    expect(cli('merge', one, runs).stderr.split('\n')[0]).toBe(
      `percpu-sim merge: ${runs} is a different campaign from ${one}: runs is 6 in ${runs} and 4 in ${one} (merge shards of one stress command)`,
    );
  });
});
