/**
 * The stress command as a user runs it, in child processes. This file runs in a process of
 * its own with little memory in use: a process that has just run many simulations holds
 * gigabytes of machines until they are collected, and forking it can fail (ENOMEM) where the
 * system refuses to overcommit.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MUTANT_NAMES } from '../../src/kernel/mutants.ts';

describe('stress command line', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 60_000 });

  it('a campaign runs every fifth seed on worker threads too', () => {
    const r = cli('stress', '--runs', '5', '--ops', '60', '--seed', '10');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('5 run(s)');
    expect(r.stdout).toContain('verdict: CLEAN');
  });

  it('lists the mutants as JSON', () => {
    const r = cli('mutants', '--json');
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; bug: string; caught_by: string[] }[];
    expect(list.map((m) => m.name)).toEqual(MUTANT_NAMES);
    for (const m of list) expect(Object.keys(m)).toEqual(['name', 'origin', 'bug', 'caught_by']);
  });

  it('runs on the largest machine: 4 GiB, with its byte-granular shadow (in a child process)', () => {
    const r = cli('stress', '--memory', '4096', '--ops', '50', '--seed', '2');
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('verdict: CLEAN');
  });

  it('exits 0 clean, 1 on a violation with the seed and a replay command, 2 on bad usage', () => {
    expect(cli('stress', '--ops', '200', '--seed', '5').status).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'pcpu-'));
    const file = join(dir, 'run.json');
    const bad = cli('stress', '--ops', '200', '--mutant', 'populate-no-zero', '--save', file);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('[isolation/nonzero-new-area]');
    expect(bad.stdout).toMatch(/seed: 1\nreplay: percpu-sim stress --seed 1 .*--mutant populate-no-zero/);
    const replay = cli('replay-run', file);
    expect(replay.status).toBe(1);
    expect(replay.stdout).toContain('reproduced: the replay ends exactly as the saved run did');
    rmSync(dir, { recursive: true, force: true });
    const usage = cli('stress', '--mutant', 'nope');
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--mutant must be one of reclaim-drops-mutex');
  });
});
