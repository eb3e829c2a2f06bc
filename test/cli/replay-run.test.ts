/**
 * replay-run's exit status means the same for both kinds of saved run (0 a clean run
 * reproduced, 1 a failure: reproduced, or a replay that does not end as the run did), and
 * replay-run and merge read standard input for "-", as replay and ftrace do. In child
 * processes, in a file of their own (see test/check/stress-cli.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = (args: string[], input?: string) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    ...(input !== undefined ? { input } : {}),
  });

let dir = '';
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'percpu-sim-replay-run-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('replay-run exit status', () => {
  it('a run log of a failing run that replays the same exits 1, as a reproduced stress failure does', () => {
    const log = join(dir, 'iso.json');
    expect(cli(['run', 'isolation-bug', '--seed', '1', '--save', log]).status).toBe(1);
    const r = cli(['replay-run', log]);
    expect(r.stdout).toContain('reproduced: the same replies and the same final allocator state\n');
    expect(r.stdout).toContain("the saved run's verdict: FAIL\n");
    expect(r.status).toBe(1);
    const clean = join(dir, 'counter.json');
    expect(cli(['run', 'counter', '--cpus', '2', '--arg', 'adds=10', '--seed', '1', '--save', clean]).status).toBe(0);
    expect(cli(['replay-run', clean]).status).toBe(0);
  });

  it('a stress save that does not reproduce exits 1, even when the replay is clean', () => {
    const saved = join(dir, 'stress.json');
    expect(cli(['stress', '--ops', '20', '--seed', '3', '--save', saved]).status).toBe(0);
    expect(cli(['replay-run', saved]).status).toBe(0);
    const s = JSON.parse(readFileSync(saved, 'utf8')) as Record<string, unknown>;
    s.verdict = 'violation';
    s.violations = [{ checker: 'data', kind: 'corruption', cpu: 0, tick: 5, message: 'made up' }];
    const forged = join(dir, 'forged.json');
    writeFileSync(forged, JSON.stringify(s));
    const r = cli(['replay-run', forged]);
    expect(r.stdout).toContain('verdict: CLEAN');
    expect(r.stdout).toContain('NOT reproduced: the saved run ended with data/corruption: made up\n');
    expect(r.status).toBe(1);
  });
});

describe('standard input', () => {
  it('replay-run - reads the saved run from stdin', () => {
    const saved = join(dir, 'bug.json');
    expect(cli(['stress', '--ops', '50', '--mutant', 'populate-no-zero', '--save', saved]).status).toBe(1);
    const r = cli(['replay-run', '-'], readFileSync(saved, 'utf8'));
    expect(r.stdout).toContain('reproduced: the replay ends exactly as the saved run did\n');
    expect(r.status).toBe(1);
    const bad = cli(['replay-run', '-'], '{"format":"nope"}');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('percpu-sim replay-run: <stdin> is not a saved run: its "format" is "nope"');
  });

  it('merge - reads one report from stdin, beside report files', () => {
    const one = cli(['stress', '--runs', '4', '--shard', '1/2', '--ops', '20', '--json']);
    const two = join(dir, 'shard-2.json');
    writeFileSync(two, cli(['stress', '--runs', '4', '--shard', '2/2', '--ops', '20', '--json']).stdout);
    const r = cli(['merge', '-', two], one.stdout);
    expect(r.stdout).toContain('merged 2 report(s) of one campaign: 4 seed(s) from seed 1\n');
    expect(r.stdout).toContain('verdict: CLEAN\n');
    expect(r.status).toBe(0);
    const twice = cli(['merge', '-', '-'], one.stdout);
    expect(twice.status).toBe(2);
    expect(twice.stderr).toContain('- (standard input) is given more than once');
    const junk = cli(['merge', '-'], 'not json');
    expect(junk.status).toBe(2);
    expect(junk.stderr).toContain('percpu-sim merge: cannot read <stdin>: ');
  });
});
