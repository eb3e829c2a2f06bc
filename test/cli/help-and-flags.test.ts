/**
 * What the help says and what the flags accept: every exit status in stress --help, --verbose
 * in run --help, boot grouping by node as run does, mutants saying which bugs are historical
 * and with no internal reference, the percpu_stats format named, --explore refusing campaign
 * flags and saying when it is incomplete, --arg taking an exponent, and --version.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 90_000 });
const groupLine = (out: string) => out.split('\n').find((l) => l.startsWith('pcpu-alloc: ['));

describe('help', () => {
  it('stress --help lists every exit status, run --help lists --verbose', () => {
    const stress = cli('stress', '--help').stdout.replace(/\s+/g, ' ');
    for (const s of [
      '0 when clean',
      '1 when a violation',
      '2 for bad usage',
      '3 when a --workers run',
      '70 for an internal error',
      '130/143',
    ])
      expect(stress).toContain(s);
    const run = cli('run', '--help').stdout;
    expect(run).toMatch(/^ {2}--verbose {11}show where an error happened/m);
    expect(run.replace(/\s+/g, ' ')).toContain('70 for an internal error');
  });

  it('boot groups CPUs by node without --numa, as run does', () => {
    const boot = cli('boot', '--cpus', '4', '--nodes', '2');
    expect(boot.status).toBe(0);
    expect(groupLine(boot.stdout)).toBe('pcpu-alloc: [0] 0 [0] 1 [1] 2 [1] 3 ');
    const run = cli('run', 'counter', '--cpus', '4', '--nodes', '2', '--arg', 'adds=10', '--seed', '1');
    expect(groupLine(run.stdout)).toBe(groupLine(boot.stdout));
    // percpu-km makes one group unless asked
    expect(groupLine(cli('boot', '--cpus', '4', '--nodes', '2', '--backend', 'km').stdout)).toBe(
      'pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 ',
    );
  });

  it('mutants says which bugs are historical and which invented, with no internal reference', () => {
    const r = cli('mutants');
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/anchors|§/);
    const sections = r.stdout.split(/^(?=Historical:|Invented:)/m);
    expect(sections[1]).toMatch(/^Historical: in a released kernel, fixed by the change named:/);
    expect(sections[2]).toMatch(/^Invented: no kernel shipped these; each breaks one rule in one place:/);
    const names = (s: string) => [...s.matchAll(/^([a-z-]+)$/gm)].map((m) => m[1]);
    expect(names(sections[1]!)).toEqual(['reclaim-drops-mutex', 'extend-stale-walk', 'destroy-in-use']);
    expect(names(sections[2]!)).toEqual(['populate-no-zero', 'populate-fail-keeps-area', 'free-without-lock']);
    const list = JSON.parse(cli('mutants', '--json').stdout) as { name: string; origin: string }[];
    expect(list.filter((m) => m.origin === 'invented').map((m) => m.name)).toEqual(names(sections[2]!));
  });

  it('the percpu_stats dump says it is the debugfs format of 4.13 and later', () => {
    const r = cli('run', 'counter', '--cpus', '2', '--arg', 'adds=10', '--seed', '1');
    expect(r.stdout).toContain(
      '\n== percpu_stats (the debugfs format of 4.13 and later, CONFIG_PERCPU_STATS; 2.6.36 had none) ==\n',
    );
  });
});

describe('flags', () => {
  it('--explore and --schedule refuse --runs and --duration', () => {
    for (const args of [
      ['--explore', '--runs', '5'],
      ['--explore', '--duration', '3'],
      ['--schedule', '0.0', '--runs', '2'],
    ]) {
      const r = cli('stress', ...args);
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe(
        `percpu-sim stress: ${args.includes('--runs') ? '--runs' : '--duration'} is for a campaign of seeds; --explore and --schedule run one seed's program through its schedules (give --seed)`,
      );
    }
  });

  it('an exploration stopped by --max-schedules is incomplete, not CLEAN', () => {
    const r = cli('stress', '--explore', '--scenario', 'extend-vs-free', '--max-schedules', '3');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[1]).toBe('verdict: no violation in 3 schedule(s), incomplete');
    expect(r.stdout).not.toContain('CLEAN');
    const j = cli('stress', '--explore', '--scenario', 'extend-vs-free', '--max-schedules', '3', '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ verdict: 'incomplete', complete: false, schedules: 3 });
  });

  it('--arg takes a number with an exponent', () => {
    const r = cli('run', 'counter', '--cpus', '2', '--arg', 'adds=1e3', '--seed', '1');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('cpus 0, 1: {"ptr":');
    expect(r.stdout).toContain(',"adds":1000}');
    expect(r.stdout).toContain('--arg adds=1000');
  });

  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = cli(flag);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`percpu-sim ${version}\n`);
    }
  });
});
