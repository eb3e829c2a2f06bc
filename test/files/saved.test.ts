/**
 * The schemas of the configurations and saved files: the defaults, what old files read as,
 * what a field must hold, and that a written file keeps the bytes readers expect.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { choicesOf, rangeOf } from '../../src/files/bounds.ts';
import { DEFAULT_STRESS, RunConfigSchema, StressConfigSchema } from '../../src/files/config.ts';
import {
  SavedRunLogSchema,
  SavedStressSchema,
  schemaErrors,
  writeChecked,
  writeSavedStress,
} from '../../src/files/saved.ts';

const dir = mkdtempSync(join(tmpdir(), 'percpu-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ARGS = { ops: 2000, allocPct: 55, reservedPct: 3, sizes: 'mixed', maxAlignShift: 6, maxLive: 40, earlyOps: 200 };

describe('configurations', () => {
  it('the stress defaults', () => {
    expect(JSON.stringify(DEFAULT_STRESS)).toBe(
      JSON.stringify({
        seed: 1,
        cpus: 3,
        nodes: 0,
        backend: 'auto',
        memoryMiB: 64,
        policy: 'random',
        granularity: 'access',
        maxDelay: 4,
        failRate: 0.005,
        mutant: null,
        strict: false,
        races: true,
        lockdep: true,
        reference: true,
        count: false,
        word: 64,
        args: ARGS,
      }),
    );
  });

  it('the bounds the command line reads', () => {
    const S = StressConfigSchema.shape;
    expect(rangeOf(S.cpus)).toEqual({ min: 1, max: 64 });
    expect(rangeOf(S.seed)).toEqual({ min: 0, max: 2 ** 32 - 1 });
    expect(rangeOf(S.failRate)).toEqual({ min: 0, max: 1 });
    expect(rangeOf(S.args.removeDefault().shape.ops)).toEqual({ min: 1, max: 10_000_000 });
    expect(choicesOf(S.backend)).toEqual(['vm', 'km', 'auto']);
    expect(choicesOf(S.mutant)).toContain('populate-no-zero');
    expect(rangeOf(RunConfigSchema.shape.cpus)).toEqual({ min: 1, max: 1024 });
    expect(choicesOf(RunConfigSchema.shape.policy)).toEqual(['random', 'fifo', 'pct', 'pos']);
    expect(choicesOf(S.policy)).toEqual(['random', 'pct', 'pos', 'fifo']);
  });
});

describe('saved stress runs', () => {
  const config = { ...DEFAULT_STRESS, nodes: 1, backend: 'km' as const };
  const violation = { checker: 'data', kind: 'corruption', cpu: 1, tick: 9, message: 'm' };

  it('are written in the one layout readers know', () => {
    const f = join(dir, 'saved.json');
    writeSavedStress(f, { config, scenario: null, schedule: null, verdict: 'violation', violations: [violation] });
    expect(readFileSync(f, 'utf8')).toBe(
      JSON.stringify(
        {
          format: 'percpu-sim-stress',
          version: 2,
          config,
          scenario: null,
          schedule: null,
          verdict: 'violation',
          violations: [violation],
        },
        null,
        2,
      ) + '\n',
    );
  });

  it('saved before granularity, the race detector and the early phase, read as those runs were', () => {
    const { granularity: _g, races: _r, lockdep: _l, ...old } = config;
    const { earlyOps: _e, ...oldArgs } = config.args;
    const s = SavedStressSchema.parse({
      format: 'percpu-sim-stress',
      version: 1,
      config: { ...old, args: oldArgs },
      schedule: [3, 1],
      verdict: 'clean',
      violations: [],
    });
    expect(s.config).toEqual({
      ...config,
      granularity: 'sleep',
      races: true,
      lockdep: true,
      args: { ...config.args, earlyOps: 0 },
    });
    expect(s.scenario).toBe(null);
  });

  it('say what they ran: a field left out is an error, not a default', () => {
    const { cpus: _c, ...noCpus } = config;
    const r = SavedStressSchema.safeParse({
      format: 'percpu-sim-stress',
      version: 2,
      config: noCpus,
      schedule: null,
      verdict: 'clean',
      violations: [],
    });
    expect(r.success).toBe(false);
    expect(schemaErrors(r.error!)).toBe('config.cpus: Required');
  });

  it('are refused before they are written when they would not load', () => {
    const f = join(dir, 'bad.json');
    expect(() =>
      writeSavedStress(f, {
        config: { ...config, cpus: 0 },
        scenario: null,
        schedule: null,
        verdict: 'clean',
        violations: [],
      }),
    ).toThrow('Number must be greater than or equal to 1');
  });
});

describe('saved run logs', () => {
  const log = {
    format: 'percpu-sim-run-log',
    version: 1,
    workload: 'counter',
    seed: 5,
    config: {
      cpus: 2,
      nodes: 1,
      backend: 'vm',
      fc: 'embed',
      memoryMiB: 64,
      policy: 'random',
      maxDelay: 4,
      mutant: null,
      failRate: 0,
    },
    verdict: 'pass',
    fingerprint: 'f',
    // as the scheduler stamps them: the body first, then seq and tick
    log: [
      { type: 'arrive', task: 1, cpu: 0, req: { kind: 'alloc', cpu: 0, size: 4, align: 4 }, seq: 1, tick: 0 },
      { type: 'run', task: 1, cpu: 0, seq: 2, tick: 1 },
    ],
  };

  it('keep every event as recorded, its keys in their order', () => {
    const f = join(dir, 'log.json');
    writeChecked(f, SavedRunLogSchema, log);
    expect(readFileSync(f, 'utf8')).toBe(JSON.stringify(log) + '\n');
  });

  it('name the event that is wrong', () => {
    const bad = { ...log, log: [log.log[0], { ...log.log[1], tick: -1 }, { ...log.log[0], req: { kind: 'x' } }] };
    const r = SavedRunLogSchema.safeParse(bad);
    expect(schemaErrors(r.error!)).toBe(
      'log.1.tick: Number must be greater than or equal to 0; log.2: an arrive event needs a request (req) with a known kind and a cpu',
    );
  });
});
