/**
 * Progress as a user sees it: a log (not a terminal) gets a line now and then, not one per
 * step; a --keep-going campaign names each violating seed when it is found; --explore shows no denominator it does not know; a --duration campaign counts seeds
 * and seconds, not a million seeds, and its header names the machine of each seed; run's
 * workload phase says how far it is.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { progressBar } from '../../src/cli/common.ts';
import { runWorkload } from '../../src/smp/run.ts';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 90_000 });

afterEach(() => vi.restoreAllMocks());

describe('progress', () => {
  it('writes a line to a log at most every few seconds, and the last one', () => {
    const lines: string[] = [];
    const isTTY = process.stderr.isTTY;
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (lines.push(String(s)), true));
    try {
      let now = 0;
      const bar = progressBar(false, () => now);
      // 60 steps in 2 s, then 60 more over the next 6 s
      for (let i = 1; i <= 60; i++, now += 33) bar('phase', i, 120);
      for (let i = 61; i <= 120; i++, now += 100) bar('phase', i, 120);
      expect(lines).toEqual([
        '[....................] 1/120 phase\n',
        // the first line at 0 ms, the next at the first step 5 s later: step 92, at 5080 ms
        '[###############.....] 92/120 phase\n',
        '[####################] 120/120 phase\n',
      ]);
      lines.length = 0;
      progressBar(false, () => 0)('explored 7 schedule(s) (at most 100)', 7, 0);
      expect(lines).toEqual(['explored 7 schedule(s) (at most 100)\n']);
    } finally {
      Object.defineProperty(process.stderr, 'isTTY', { value: isTTY, configurable: true });
    }
  });

  it('a --keep-going campaign says what each violating seed found as it finds it', () => {
    const r = cli(
      'stress',
      '--runs',
      '3',
      '--ops',
      '100',
      '--keep-going',
      '--jobs',
      '1',
      '--mutant',
      'populate-no-zero',
    );
    expect(r.status).toBe(1);
    const found = r.stderr.split('\n').filter((l) => l.startsWith('seed '));
    expect(found.map((l) => l.replace(/after [\d.]+ s/, 'after T s').replace(/: nonzero-new-area: .*$/, ''))).toEqual([
      'seed 1 after T s: isolation/nonzero-new-area',
      'seed 2 after T s: isolation/nonzero-new-area',
      'seed 3 after T s: isolation/nonzero-new-area',
    ]);
    // each with the command that reruns it, before the campaign's own report on stdout
    expect(r.stderr).toContain('  rerun: percpu-sim stress --seed 2 ');
    expect(cli('stress', '--runs', '2', '--ops', '100', '--mutant', 'populate-no-zero').stderr).not.toMatch(/^seed /m);
  });

  it('--explore shows no bar over --max-schedules', () => {
    const r = cli('stress', '--explore', '--scenario', 'extend-vs-free', '--max-schedules', '40');
    expect(r.status).toBe(0);
    expect(r.stderr).not.toContain('/40 ');
    expect(r.stderr.split('\n')[0]).toMatch(
      /^explored 1 schedule\(s\) \(at most 40\), \d+ choice points deep, no violation yet, \d+ s$/,
    );
  });

  it('a --duration campaign counts seeds and seconds, and names the machine of each seed', () => {
    const r = cli('stress', '--duration', '2', '--ops', '20');
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/\/1000000|\d{4} ms|\/2000/);
    for (const l of r.stderr.trim().split('\n').slice(0, -1))
      expect(l).toMatch(/^\[[#.]{20}\] [0-2]\/2 \d+ seed\(s\), \d+\/2 s(, \d+ jobs)?$/);
    const out = r.stdout.split('\n');
    expect(out[0]).toBe(
      'percpu-sim stress: 3 CPUs, 1 to 3 node(s) by seed, vm on even seeds and km on odd ones, policy random',
    );
    const seed = Number(/; last run: seed (\d+) /.exec(out[1]!)![1]);
    expect(out[1]).toContain(
      `last run: seed ${seed} (${1 + (Math.floor(seed / 2) % 3)} node(s), ${seed % 2 ? 'km' : 'vm'}), `,
    );
    expect(r.stdout).not.toContain('not run');
    expect(r.stdout).toMatch(/^campaign: \d+ seed\(s\) \(1\.\.\d+\)( on \d+ jobs)?; all clean; --duration 2 s$/m);
  });

  it("run's workload phase says how many CPUs have finished", async () => {
    const phases: string[] = [];
    const r = await runWorkload({
      workload: 'counter',
      seed: 1,
      cpus: 2,
      args: { adds: 10 },
      onProgress: (phase, _done, _total, detail) => phases.push(detail ? `${phase}, ${detail}` : phase),
    });
    expect(r.verdict).toBe('pass');
    const run = phases.filter((p) => p.startsWith('run: '));
    expect(run[0]).toBe('run: 2 CPUs');
    expect(run.at(-1)).toMatch(/^run: 2 CPUs, 2 finished, \d+ requests served$/);
    expect(run).toContainEqual(expect.stringMatching(/^run: 2 CPUs, 1 finished, \d+ requests served$/));
  });
});
