/**
 * Every rerun line the tool prints parses back, through the stress command's own flag
 * handling, into the configuration, scenario and schedule of the run it came from.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from '../../src/cli/common.ts';
import { exploreSetup, parseSchedule } from '../../src/cli/explore.ts';
import { STRESS_OPTIONS, stressConfig } from '../../src/cli/stress.ts';
import { type StressConfig, StressConfigSchema, resolveMachine } from '../../src/files/config.ts';
import { choicesOf, rangeOf } from '../../src/files/bounds.ts';
import { runFlagsCommand, shellWord, stressCommand } from '../../src/files/rerun.ts';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
const dir = mkdtempSync(join(tmpdir(), 'percpu-rerun-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a stress command line asks for, read as the stress command reads it. */
function request(argv: string[]) {
  const { values } = parse(argv, STRESS_OPTIONS);
  const base = stressConfig(values);
  const explored = values.explore === true || values.schedule !== undefined;
  const { sc, cfg } = explored ? exploreSetup(values, base) : { sc: null, cfg: base };
  return {
    cfg: { ...cfg, ...resolveMachine(cfg) },
    scenario: sc?.name ?? null,
    schedule: typeof values.schedule === 'string' ? parseSchedule(values.schedule) : null,
    workers: values.workers === true,
  };
}

/** The words of a printed line after "percpu-sim stress". */
function argvOf(line: string): string[] {
  const words = line.split(' ');
  expect(words.slice(0, 2)).toEqual(['percpu-sim', 'stress']);
  return words.slice(2);
}

const replayLines = (stdout: string): string[] =>
  stdout.split('\n').flatMap((l) => (/^\s*replay: /.test(l) ? [l.replace(/^\s*replay: /, '')] : []));

const SCHEDULE = '0.64,0.64,0.64,0.64,0.64,0.64,0.64,0.64,0.64,1.0,1.0,1.0,1.0,1.0,1.0';
const SCHEDULED = ['--scenario', 'extend-vs-free', '--mutant', 'extend-stale-walk', '--schedule', SCHEDULE];

describe('stress rerun lines', () => {
  it('any configuration parses back from its line, its machine resolved', () => {
    const S = StressConfigSchema.shape;
    const A = S.args.removeDefault().shape;
    const n = (s: Parameters<typeof rangeOf>[0]) => fc.integer(rangeOf(s));
    const one = <T extends string>(s: Parameters<typeof choicesOf<T>>[0]) => fc.constantFrom(...choicesOf<T>(s));
    const config: fc.Arbitrary<StressConfig> = fc
      .record({
        seed: n(S.seed),
        cpus: n(S.cpus),
        nodes: n(S.nodes),
        backend: one(S.backend),
        memoryMiB: n(S.memoryMiB),
        policy: one(S.policy),
        granularity: one(S.granularity),
        maxDelay: n(S.maxDelay),
        failRate: fc.double({ min: 0, max: 1, noNaN: true }),
        mutant: fc.option(one(S.mutant), { nil: null }),
        strict: fc.boolean(),
        races: fc.boolean(),
        lockdep: fc.boolean(),
        reference: fc.boolean(),
        count: fc.boolean(),
        word: fc.constantFrom(32 as const, 64 as const),
        args: fc.record({
          ops: n(A.ops),
          allocPct: n(A.allocPct),
          reservedPct: n(A.reservedPct),
          sizes: one(A.sizes),
          maxAlignShift: n(A.maxAlignShift),
          maxLive: n(A.maxLive),
          earlyOps: n(A.earlyOps),
        }),
      })
      .map((c) => ({ ...c, nodes: Math.min(c.nodes, c.cpus) }));
    fc.assert(
      fc.property(config, (cfg) => {
        expect(request(argvOf(stressCommand(cfg))).cfg).toEqual({ ...cfg, ...resolveMachine(cfg) });
      }),
      { seed: 20261126, numRuns: 300 },
    );
  });

  it('a schedule run prints a line that reruns that schedule of that scenario, as replay-run does', () => {
    const want = request(SCHEDULED);
    expect(want.schedule).toHaveLength(15);
    const saved = join(dir, 'schedule.json');
    const r = cli('stress', ...SCHEDULED, '--save', saved);
    expect(r.status).toBe(1);
    const [line] = replayLines(r.stdout);
    expect(request(argvOf(line!))).toEqual(want);
    const again = cli('replay-run', saved);
    expect(again.stdout).toContain('reproduced: the replay ends exactly as the saved run did');
    expect(replayLines(again.stdout)).toEqual([line]);
  });

  it('an exploration prints, for each violation, a line that reruns its schedule', () => {
    const argv = ['--explore', '--scenario', 'extend-vs-free', '--mutant', 'extend-stale-walk'];
    const r = cli('stress', ...argv);
    expect(r.status).toBe(1);
    const schedules = [...r.stdout.matchAll(/^ {4}schedule: (.*)$/gm)].map((m) => m[1]!.split(','));
    const lines = replayLines(r.stdout);
    expect(lines).toHaveLength(schedules.length);
    expect(schedules[0]).toEqual(SCHEDULE.split(','));
    const { cfg, scenario } = request(argv);
    lines.forEach((line, i) =>
      expect(request(argvOf(line))).toEqual({ cfg, scenario, schedule: schedules[i], workers: false }),
    );
  });

  it('a stress run and a merged campaign print lines that rerun the failing seed', () => {
    const argv = ['--runs', '2', '--ops', '50', '--mutant', 'populate-no-zero', '--seed', '6'];
    const r = cli('stress', ...argv);
    expect(r.status).toBe(1);
    const [line] = replayLines(r.stdout);
    const seed = Number(/^seed: (\d+)$/m.exec(r.stdout)![1]);
    // the machine is the one each seed chooses
    const cfg = stressConfig(parse(argv, STRESS_OPTIONS).values);
    const want = { ...cfg, seed, ...resolveMachine({ ...cfg, seed }) };
    expect(request(argvOf(line!)).cfg).toEqual(want);
    const report = join(dir, 'campaign.json');
    writeFileSync(report, cli('stress', ...argv, '--json').stdout);
    const merged = replayLines(cli('merge', report).stdout);
    expect(merged[0]).toBe(line);
    for (const l of merged) {
      const s = request(argvOf(l)).cfg.seed;
      expect(request(argvOf(l)).cfg).toEqual({ ...cfg, seed: s, ...resolveMachine({ ...cfg, seed: s }) });
    }
  });
});

describe('other rerun lines', () => {
  it('quote only what the shell would split or expand', () => {
    for (const word of ['counter', './my load.ts', "it's", 'a=$HOME', 'x;y', '-1', 'adds=1000', ''])
      expect(spawnSync('sh', ['-c', `printf '%s' ${shellWord(word)}`], { encoding: 'utf8' }).stdout).toBe(word);
    expect(shellWord('examples/demo.ts')).toBe('examples/demo.ts');
  });

  it('an interrupted run reruns with the seed it drew in place of any --seed given', () => {
    expect(runFlagsCommand('demo', 7, ['--cpus', '2', '--seed', '3', '--arg', 'ops=5'])).toBe(
      'percpu-sim run demo --seed 7 --cpus 2 --arg ops=5',
    );
    expect(runFlagsCommand('my load.ts', 7, ['--seed=3'])).toBe("percpu-sim run 'my load.ts' --seed 7");
  });
});
