/**
 * Controlled runs on worker threads: determinism, replay of the whole run along its schedule,
 * and each protocol bug of the data path and the page tables caught and named. Every wait is
 * bounded by the controller's and the gate's time-outs, and each test by its own.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { violationLine } from '../../src/check/violation.ts';
import { SavedRunLogSchema } from '../../src/files/saved.ts';
import { controlledSeed, onWorkers, stressOnWorkers, workerRoundConfig } from '../../src/stress/campaign.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';
import { FLUSH } from '../../src/smp/controller.ts';
import { replayControlled, saveRunLog } from '../../src/smp/run-log.ts';
import { runWorkload, type RunOptions } from '../../src/smp/run.ts';

const T = 120_000;

/** A short stress run under the controller (seed 2: vm backend). */
function controlledStress(seed: number, extra: Partial<RunOptions> = {}, ops = 40) {
  const cfg = workerRoundConfig({ ...DEFAULT_STRESS, seed, args: { ...DEFAULT_STRESS.args, ops } });
  return stressOnWorkers(cfg, {
    phaseTimeoutMs: 30_000,
    failOnLeak: true,
    control: { policy: 'random', timeoutMs: 20_000 },
    ...extra,
  });
}

const kinds = (r: { violations: readonly { checker: string; kind: string }[] }) =>
  r.violations.map((v) => `${v.checker}/${v.kind}`);

describe('controlled runs', () => {
  it(
    'are a function of their seed: the same schedule, verdict and final memory twice',
    async () => {
      const a = await controlledStress(2);
      const b = await controlledStress(2);
      expect(a.verdict).toBe('pass');
      expect(a.controlled!.schedule.length).toBeGreaterThan(1000);
      expect(b.controlled!.schedule).toEqual(a.controlled!.schedule);
      // the aimed flushes are choices of the schedule too
      expect(a.controlled!.schedule.filter((c) => c === FLUSH).length).toBeGreaterThan(10);
      expect(b.controlled!.memoryHash).toBe(a.controlled!.memoryHash);
      const c = await controlledStress(2, { control: { policy: 'pct', timeoutMs: 20_000 } });
      expect(c.verdict).toBe('pass');
      expect(c.controlled!.schedule).not.toEqual(a.controlled!.schedule);
    },
    T,
  );

  it(
    'saved, replay to the same violations and memory hash: clean and failing',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'controlled-'));
      for (const [name, extra] of [
        ['clean', {}],
        ['failing', { mutant: 'populate-no-zero' as const }],
      ] as const) {
        const r = await controlledStress(4, extra);
        expect(r.verdict).toBe(name === 'clean' ? 'pass' : 'fail');
        const file = join(dir, `${name}.json`);
        saveRunLog(file, r);
        const saved = SavedRunLogSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
        expect(saved.controlled!.schedule).toContain(FLUSH);
        expect(saved.controlled!.memoryHash).toBe(r.controlled!.memoryHash);
        const again = await replayControlled(saved);
        expect(again.differences).toEqual([]);
        expect(again.reproduced).toBe(true);
        expect(again.report.violations.map(violationLine)).toEqual(r.violations.map(violationLine));
        if (name === 'failing') expect(kinds(r)[0]).toBe('isolation/nonzero-new-area');
      }
    },
    T,
  );

  it(
    'a replay that cannot follow its schedule says where it parted',
    async () => {
      const r = await controlledStress(2, { control: { policy: 'random', schedule: [-1, -1, -1], timeoutMs: 20_000 } });
      expect(r.verdict).toBe('fail');
      expect(r.violations[0]!.message).toMatch(
        /^replay parted from the recorded schedule at choice 0: recorded the allocator, but only cpu 0 could run$/,
      );
    },
    T,
  );
});

describe('the memory-management protocol', () => {
  it(
    'the TLB fill reading the generation after the walk (the old MemAccess order) is caught',
    async () => {
      const r = await controlledStress(2, { control: { policy: 'random', bugs: ['tlb-gen-after-walk'] } });
      expect(kinds(r)[0]).toBe('mm/tlb-fill-order');
      expect(r.violations[0]!.message).toMatch(
        /^cpu \d filled its TLB with 0x2[0-9a-f]+ -> frame \d+ under generation \d+, but read no generation before the table walk: a TLB fill reads the generation, walks, and reads it again/,
      );
      // the fixed order passes the same run
      expect((await controlledStress(2)).verdict).toBe('pass');
    },
    T,
  );

  it(
    'a fill tagged with a generation read again after its walk is caught by an aimed flush, and only by one',
    async () => {
      const bugs = ['tlb-tag-after-walk' as const];
      const r = await controlledStress(2, { control: { policy: 'random', bugs, timeoutMs: 20_000 } });
      expect(kinds(r)[0]).toBe('mm/tlb-fill-order');
      expect(r.violations[0]!.message).toMatch(
        /^cpu \d filled its TLB with 0x2[0-9a-f]+ -> frame \d+ under generation (\d+), but the walk ran under generation (?!\1)\d+: a translation used under a generation it was not read under$/,
      );
      // without flushes aimed into the window the same run passes
      const blind = await controlledStress(2, { control: { policy: 'random', bugs, aimFlush: 0, timeoutMs: 20_000 } });
      expect(blind.verdict).toBe('pass');
      expect(blind.controlled!.schedule).not.toContain(FLUSH);
    },
    T,
  );

  it('the generation bumped before the entries are cleared is caught at the bump', async () => {
    const r = await runStress({ ...DEFAULT_STRESS, seed: 2 }, { bugs: ['pt-gen-before-clear'] });
    expect(kinds(r)[0]).toBe('mm/gen-bump-early');
    expect(r.violations[0]!.message).toBe(
      'page-table generation bumped to 1 before the entries it covers changed: no entry had been cleared since the last bump, so a TLB filled now caches a frame about to go, tagged as current',
    );
  }, 60_000);

  it('depopulation freeing pages before unmapping them is caught at the free', async () => {
    const r = await runStress({ ...DEFAULT_STRESS, seed: 2 }, { bugs: ['depopulate-free-before-unmap'] });
    expect(kinds(r)[0]).toBe('mm/freed-while-mapped');
    expect(r.violations[0]!.message).toMatch(
      /^frame \d+ given back to the page allocator while page-table entry 0x2[0-9a-f]+ still maps it: unmap before freeing$/,
    );
  }, 60_000);
});

describe('--word 32', () => {
  const stats = (sync: boolean, word: 32 | 64, bugs: 'store64-split'[] = []) =>
    runWorkload({
      workload: 'u64-stats',
      seed: 3,
      cpus: 4,
      args: { sync, updates: 100 },
      control: { policy: 'random', word, bugs },
    });

  it(
    'per-CPU 64-bit statistics are read torn without a sequence count, and whole with one',
    async () => {
      const torn = await stats(false, 32);
      expect(torn.verdict).toBe('fail');
      expect(kinds(torn)[0]).toBe('races/torn-read');
      expect(torn.violations[0]!.message).toMatch(
        /^torn read: cpu \d read (the 64-bit value at 0x[0-9a-f]+ as two 32-bit halves and cpu \d wrote it between them|0x[0-9a-f]+ while cpu \d wrote its 64-bit value as two 32-bit halves) \(a reader needs a u64_stats_sync-style sequence count and retries\)$/,
      );
      expect((await stats(true, 32)).verdict).toBe('pass');
      expect((await stats(false, 64)).verdict).toBe('pass');
    },
    T,
  );

  it(
    'a 64-bit store done as two 32-bit stores on a 64-bit machine is caught as torn',
    async () => {
      const r = await stats(false, 64, ['store64-split']);
      expect(kinds(r)[0]).toBe('races/torn-read');
    },
    T,
  );
});

describe('default stress', () => {
  it('runs every tenth seed controlled, the first worker round among them, on both backends', () => {
    const base = 1;
    const seeds = Array.from({ length: 40 }, (_, i) => base + i);
    expect(seeds.filter((s) => onWorkers(base, s))).toEqual([4, 9, 14, 19, 24, 29, 34, 39]);
    expect(seeds.filter((s) => controlledSeed(base, s))).toEqual([4, 19, 24, 39]);
    expect(seeds.filter((s) => controlledSeed(2, s))).toEqual([5, 20, 25, 40]);
  });
});

describe('the torn-access probe on free threads', () => {
  const run = (bugs: 'store64-split'[]) =>
    stressOnWorkers(workerRoundConfig({ ...DEFAULT_STRESS, seed: 2, args: { ...DEFAULT_STRESS.args, ops: 40 } }), {
      phaseTimeoutMs: 30_000,
      failOnLeak: true,
      bugs,
    });

  it(
    'catches a 64-bit store done as two 32-bit stores, and passes the whole ones',
    async () => {
      // real parallelism: on a busy machine a round may find the two threads never on cores
      // at once, so up to three rounds; any of the 64-bit kinds the split store reaches may tear
      let r = await run(['store64-split']);
      for (let k = 1; k < 3 && r.verdict === 'pass'; k++) r = await run(['store64-split']);
      expect(r.verdict).toBe('fail');
      expect(r.violations[0]!.message).toMatch(
        /^cpu \d: CorruptionError: cpu \d: torn access: cpu 0 stores 64-bit values whose bytes are all equal, and (per_cpu_read64 of its this_cpu_write64|atomic_read64 of its atomic_write64|a 64-bit load of its 64-bit stores \(MemAccess\.read64, write64\)) read 0x[0-9a-f]{16}, bytes of two different stores: a 64-bit store or load done in parts/,
      );
      expect((await run([])).verdict).toBe('pass');
    },
    T,
  );
});
