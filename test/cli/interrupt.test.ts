/**
 * A signal ends a long command with what finished written: a campaign's report of the seeds
 * that ran (merge reads it; the others are not run) and the last finished seed's files, an
 * exploration's schedules so far, a workload run's verdict and timeline so far; then exit 130
 * (SIGINT) or 143 (SIGTERM). The campaign's threads end at once, and its pool threads start
 * no bundler. In child processes with bounded waits, in a file of their own (see
 * test/check/stress-cli.test.ts).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CampaignReportSchema, SavedStressSchema } from '../../src/files/saved.ts';

let dir = '';
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'percpu-sim-interrupt-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Ended {
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms from the signal to the exit */
  after: number;
  /** the most esbuild processes the command had at once */
  bundlers: number;
}

/** esbuild processes whose parent is `pid` (Linux /proc). */
function bundlersOf(pid: number): number {
  let n = 0;
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x)))
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const [, comm, rest] = /^\d+ \((.*)\) (.*)$/.exec(stat) ?? [];
      if (comm === 'esbuild' && Number(rest!.split(' ')[1]) === pid) n++;
    } catch {
      // the process ended meanwhile
    }
  return n;
}

/** Runs the command, sends `signal` after `ms` (or once `ready` matches stderr), and waits at most 60 s for the end. */
function interrupt(args: string[], signal: NodeJS.Signals, ms: number, ready: RegExp | null = null): Promise<Ended> {
  const child: ChildProcess = spawn(process.execPath, ['bin/percpu-sim.mjs', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let sent = 0;
  let bundlers = 0;
  const send = (): void => {
    if (sent) return;
    sent = Date.now();
    child.kill(signal);
  };
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (ready && ready.test(stderr)) setTimeout(send, ms);
  });
  const watch = setInterval(() => (bundlers = Math.max(bundlers, bundlersOf(child.pid!))), 100);
  if (!ready) setTimeout(send, ms);
  const limit = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearInterval(watch);
      clearTimeout(limit);
      resolve({ code, stdout, stderr, after: Date.now() - sent, bundlers });
    }),
  );
}

describe('a signal writes what finished', () => {
  it('a campaign on a pool: the seeds that ran as a report merge reads, the last seed’s files, exit 143', async () => {
    const save = join(dir, 'last.json');
    const html = join(dir, 'last.html');
    const campaign = ['stress', '--runs', '1000', '--jobs', '2', '--ops', '300', '--keep-going', '--json'];
    const r = await interrupt([...campaign, '--save', save, '--html', html], 'SIGTERM', 8000);
    expect(r.code).toBe(143);
    const report = CampaignReportSchema.parse(JSON.parse(r.stdout));
    const c = report.campaign;
    expect(c.interrupted).toBe('SIGTERM');
    expect(c.seeds.length).toBeGreaterThan(0);
    expect(c.seeds.length).toBeLessThan(1000);
    expect(c.skipped).toBe(1000 - c.seeds.length);
    expect(r.stderr).toMatch(
      /percpu-sim stress: interrupted \(SIGTERM\); \d+ run\(s\) finished, 0 with violations; seeds? [\d.,. ]+ (was|were) running; rerun it with: percpu-sim stress --seed \d+ .*; writing the report of what finished\n/,
    );
    const saved = SavedStressSchema.parse(JSON.parse(readFileSync(save, 'utf8')));
    expect(saved.config.seed).toBe(c.seeds.at(-1)!.seed);
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>/i);
    const shard = join(dir, 'interrupted.json');
    writeFileSync(shard, r.stdout);
    const merged = spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'merge', shard], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(merged.status).toBe(2);
    expect(merged.stdout).toContain(`missing: ${1000 - c.seeds.length} seed(s) of the campaign are in no report`);
    expect(merged.stdout).toContain('verdict: INCOMPLETE\n');
  }, 90_000);

  it('a campaign in this thread stops at once and lists the seeds not run, exit 130', async () => {
    const r = await interrupt(
      ['stress', '--runs', '40', '--jobs', '1', '--ops', '100', '--keep-going'],
      'SIGINT',
      3000,
    );
    expect(r.code).toBe(130);
    expect(r.after).toBeLessThan(3000);
    expect(r.stdout).toMatch(/\ncampaign: \d+ seed\(s\) \(1\.\.\d+\); all clean; \d+ not run\n/);
    expect(r.stdout).toMatch(/\ninterrupted \(SIGINT\); not run: seed\(s\) \d+\.\.40\n$/);
  }, 60_000);

  it('an exploration: the schedules so far and the violations found, incomplete, exit 130', async () => {
    const save = join(dir, 'explored.json');
    const args = ['stress', '--explore', '--scenario', 'extend-vs-free', '--mutant', 'extend-stale-walk'];
    // the signal soon after the first violation is found (its progress line says so)
    const r = await interrupt(
      [...args, '--no-reduction', '--preemptions', '8', '--save', save],
      'SIGINT',
      300,
      /[1-9]\d* violation kind\(s\) found/,
    );
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(
      /^explored scenario extend-vs-free without reduction: \d+ schedule\(s\), up to \d+ choice points, preemption bound 8; stopped by SIGINT, incomplete\nverdict: VIOLATION \(1 kind\)\n {2}\[kernel-bug\/LIST_CORRUPTION\] /,
    );
    expect(SavedStressSchema.parse(JSON.parse(readFileSync(save, 'utf8'))).verdict).toBe('violation');
  }, 90_000);

  it('a workload run: the verdict INTERRUPTED, the timeline so far, and --save said not written', async () => {
    const html = join(dir, 'run.html');
    const trace = join(dir, 'run.trace.json');
    const save = join(dir, 'run.json');
    const args = ['run', 'counter', '--cpus', '2', '--arg', 'adds=100000000000', '--seed', '3'];
    const r = await interrupt([...args, '--html', html, '--trace', trace, '--save', save, '--json'], 'SIGINT', 4000);
    expect(r.code).toBe(130);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toEqual({
      workload: 'counter',
      seed: 3,
      verdict: 'interrupted',
      signal: 'SIGINT',
      phase: 'run: 2 CPUs',
      rerun: expect.stringMatching(/^percpu-sim run counter --seed 3 --cpus 2 --arg adds=100000000000 /) as string,
    });
    expect(readFileSync(html, 'utf8')).toContain('INTERRUPTED');
    expect((JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: unknown[] }).traceEvents.length).toBeGreaterThan(
      0,
    );
    expect(existsSync(save)).toBe(false);
    expect(r.stderr).toContain(
      `percpu-sim run: --save ${save}: not written: the run was interrupted before its end, and a run log replays only a whole run\n`,
    );
  }, 60_000);
});

describe('--jobs', () => {
  const cores = availableParallelism();

  it('is capped at the seeds to run, and more than the cores is warned about', () => {
    const r = spawnSync(
      process.execPath,
      ['bin/percpu-sim.mjs', 'stress', '--runs', String(cores + 1), '--jobs', '200', '--ops', '20', '--json'],
      { encoding: 'utf8', timeout: 90_000 },
    );
    expect(r.status).toBe(0);
    expect(CampaignReportSchema.parse(JSON.parse(r.stdout)).campaign.jobs).toBe(cores + 1);
    expect(r.stderr).toContain(
      `percpu-sim stress: --jobs ${cores + 1} is more than the ${cores} core(s) here: the seeds share them, each runs that much slower, and the campaign ends no sooner\n`,
    );
  }, 120_000);

  it('many jobs end within two seconds of a signal, and their threads start no bundler', async () => {
    const r = await interrupt(['stress', '--runs', '100', '--jobs', '12', '--keep-going'], 'SIGTERM', 5000);
    expect(r.code).toBe(143);
    expect(r.after).toBeLessThan(2000);
    // seeds 1..12 were running: one range, not twelve numbers
    expect(r.stderr).toContain('seeds 1..12 were running');
    expect(r.bundlers).toBeLessThanOrEqual(1);
  }, 60_000);
});
