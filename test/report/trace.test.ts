/**
 * The Chrome trace: its structure against the format (B/E pairs per track, time never going
 * back on a track, flows between existing spans, numeric counters) and its content against the
 * event log (every request, lock acquisition and violation exactly once).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ActorEvent } from '../../src/sim/events.ts';
import { TimelineRecorder } from '../../src/report/timeline.ts';
import { type ChromeTrace, PID_ACTOR, PID_CPUS, PID_LOCKS, TICK_US, chromeTrace } from '../../src/report/trace.ts';
import { checkTrace } from '../../src/report/trace-check.ts';
import { DEFAULT_STRESS, type StressConfig, runStress } from '../../src/stress/engine.ts';
import { recordHooks, stressPage } from '../../src/cli/reports.ts';

const cfg = (seed: number, extra: Partial<StressConfig> = {}): StressConfig => ({
  ...DEFAULT_STRESS,
  seed,
  ...extra,
  args: { ...DEFAULT_STRESS.args, ops: 150, earlyOps: 60 },
});

async function traced(c: StressConfig) {
  const rec = new TimelineRecorder({ frames: false });
  const report = await runStress(c, recordHooks(rec));
  stressPage(report, 'x', rec); // puts the violations on the timeline
  const timeline = rec.finish();
  return { report, timeline, trace: chromeTrace(timeline, 'test') };
}

const spans = (t: ChromeTrace, pid: number, cat: string) =>
  t.traceEvents.filter((e) => e.ph === 'B' && e.pid === pid && e.cat === cat);
const threadNames = (t: ChromeTrace, pid: number) =>
  new Map(
    t.traceEvents
      .filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === pid)
      .map((e) => [e.tid, String(e.args!.name)]),
  );

describe('chrome trace', () => {
  it('is well formed and holds every request, lock acquisition and counter of a clean run', async () => {
    const { report, timeline, trace } = await traced(cfg(4));
    expect(report.verdict).toBe('clean');
    expect(checkTrace(trace)).toEqual([]);
    const log = timeline.events;

    // every CPU request once, on its CPU's track, with its reply
    const arrivals = log.filter((e): e is Extract<ActorEvent, { type: 'arrive' }> => e.type === 'arrive' && e.cpu >= 0);
    const all = spans(trace, PID_CPUS, 'request');
    // the lifecycle's refusals are requests too, with no task: init_late before slab, while it
    // is queued, and again after late init
    expect(all.filter((e) => e.args!.refused).map((e) => [e.name, e.args!.refused])).toEqual([
      ['init_late (refused)', 'percpu: percpu_init_late before slab is online (mm_init)'],
      ['init_late (refused)', 'percpu: percpu_init_late is already running'],
      ['init_late (refused)', 'percpu: percpu_init_late has already run'],
    ]);
    const reqs = all.filter((e) => !e.args!.refused);
    expect(reqs.map((e) => e.args!.task).sort((a, b) => Number(a) - Number(b))).toEqual(
      arrivals.map((e) => e.task).sort((a, b) => a - b),
    );
    const names = threadNames(trace, PID_CPUS);
    for (const r of reqs) {
      const a = arrivals.find((e) => e.task === r.args!.task)!;
      expect(names.get(r.tid)).toMatch(new RegExp(`^CPU ${a.cpu}\\b`));
      expect(r.ts).toBe(trace.traceEvents.find((e) => e.ph === 's' && e.id === a.task)!.ts);
      expect(r.name).toBe(a.req.kind);
    }
    // one flow per request, from the CPU track to a kernel task lane
    const starts = trace.traceEvents.filter((e) => e.ph === 's');
    const ends = trace.traceEvents.filter((e) => e.ph === 'f');
    expect(starts.length).toBe(arrivals.length);
    expect(new Set(ends.map((e) => e.id))).toEqual(new Set(arrivals.map((e) => e.task)));
    expect(new Set(starts.map((e) => e.pid))).toEqual(new Set([PID_CPUS]));
    expect(new Set(ends.map((e) => e.pid))).toEqual(new Set([PID_ACTOR]));

    // every kernel task once, and every lock acquisition once, on that lock's track
    expect(spans(trace, PID_ACTOR, 'task').length).toBe(log.filter((e) => e.type === 'arrive').length);
    const locks = threadNames(trace, PID_LOCKS);
    for (const lock of ['pcpu_alloc_mutex', 'pcpu_lock']) {
      const held = spans(trace, PID_LOCKS, 'lock').filter((e) => locks.get(e.tid)?.startsWith(lock));
      const acquired = log.filter((e) => e.type === 'lock' && e.lock === lock);
      expect(held.length).toBe(acquired.length);
      expect(held.map((e) => e.args!.task)).toEqual(acquired.map((e) => e.task));
    }
    // sleeps and waits are nested in their task; kernel sleeps are all there
    expect(spans(trace, PID_ACTOR, 'sleep').length).toBe(log.filter((e) => e.type === 'sleep').length);
    expect(spans(trace, PID_ACTOR, 'wait').length).toBe(log.filter((e) => e.type === 'block').length);

    // counters: numbers, the last sample being the allocator's state at the end; Perfetto names
    // a counter track "name key", so each is named once and its one key is its unit
    const counters = trace.traceEvents.filter((e) => e.ph === 'C');
    expect([...new Set(counters.map((e) => `${e.name} ${Object.keys(e.args!).join(',')}`))].sort()).toEqual([
      'chunks count',
      'free bytes',
      'live areas count',
      'populated pages count',
    ]);
    const lastLive = counters.filter((e) => e.name === 'live areas').at(-1)!;
    expect(lastLive.args!.count).toBe(0); // every CPU freed what it allocated
    // a lock's slices all carry the lock's name; who held it is in args
    const lockSlices = spans(trace, PID_LOCKS, 'lock');
    expect(new Set(lockSlices.map((e) => e.name))).toEqual(new Set(['pcpu_alloc_mutex', 'pcpu_lock']));
    for (const e of lockSlices)
      expect(e.args!.owner).toBe(
        `task ${e.args!.task} (${Number(e.args!.cpu) < 0 ? 'kworker' : `cpu ${e.args!.cpu}`})`,
      );
    // no slice is a sliver: the events of a tick share it evenly
    const open = new Map<string, number[]>();
    const lengths: number[] = [];
    for (const e of trace.traceEvents) {
      const k = `${e.pid}/${e.tid}`;
      if (e.ph === 'B') open.set(k, [...(open.get(k) ?? []), e.ts]);
      else if (e.ph === 'E') lengths.push(e.ts - open.get(k)!.pop()!);
    }
    expect(lengths.length).toBeGreaterThan(1000);
    expect(Math.min(...lengths)).toBeGreaterThan(10);
    // pointers in hex
    for (const e of spans(trace, PID_CPUS, 'request').filter((x) => x.args!.kind === 'free'))
      expect(e.args!.ptr).toMatch(/^0x[0-9a-f]+$/);
    // lifecycle instants, in order
    expect(trace.traceEvents.filter((e) => e.cat === 'lifecycle').map((e) => e.name)).toEqual([
      'lifecycle: boot',
      'lifecycle: early',
      'lifecycle: slabOnline',
      'lifecycle: lateInit',
      'lifecycle: running',
    ]);
    // timestamps come from ticks
    const firstDone = log.find((e) => e.type === 'done')!;
    const endOfFirst = trace.traceEvents.find((e) => e.ph === 'E' && e.pid === PID_ACTOR && e.cat === 'task')!;
    expect(Math.floor(endOfFirst.ts / TICK_US)).toBe(firstDone.tick);
  });

  it('puts each violation once as a global instant with its text', async () => {
    const { report, trace } = await traced(
      cfg(1, { args: { ...DEFAULT_STRESS.args, ops: 200 }, mutant: 'populate-no-zero' }),
    );
    expect(report.verdict).toBe('violation');
    expect(checkTrace(trace)).toEqual([]);
    const instants = trace.traceEvents.filter((e) => e.ph === 'i' && e.s === 'g');
    expect(instants.length).toBe(report.violations.length);
    expect(String(instants[0]!.args!.text)).toContain(report.violations[0]!.message);
    expect(instants[0]!.name).toMatch(/^violation: \[isolation\/nonzero-new-area\]/);
  });

  it('is a pure function of the seed', async () => {
    const a = await traced(cfg(6, { mutant: null }));
    const b = await traced(cfg(6, { mutant: null }));
    expect(JSON.stringify(b.trace)).toBe(JSON.stringify(a.trace));
  });

  it('the format check finds what viewers trip over', () => {
    const ok = {
      traceEvents: [
        { name: 'a', ph: 'B', ts: 1, pid: 1, tid: 1 },
        { name: 'a', ph: 'E', ts: 2, pid: 1, tid: 1 },
      ],
    };
    expect(checkTrace(ok)).toEqual([]);
    expect(checkTrace({ traceEvents: [{ name: 'a', ph: 'B', ts: 1, pid: 1, tid: 1 }] })).toEqual([
      'track 1/1: B "a" at 1 is never closed',
    ]);
    expect(
      checkTrace({
        traceEvents: [
          { name: 'a', ph: 'B', ts: 1, pid: 1, tid: 1 },
          { name: 'b', ph: 'E', ts: 2, pid: 1, tid: 1 },
        ],
      }),
    ).toEqual(['event 1: E "b" on track 1/1 closes "a"']);
    expect(
      checkTrace({
        traceEvents: [
          { name: 'a', ph: 'B', ts: 5, pid: 1, tid: 1 },
          { name: 'a', ph: 'E', ts: 2, pid: 1, tid: 1 },
        ],
      })[0],
    ).toMatch(/goes back in time/);
    expect(checkTrace({ traceEvents: [{ name: 'n', ph: 'C', ts: 5, pid: 1, tid: 0, args: { n: 'x' } }] })).toEqual([
      'event 0: counter "n" has args that are not numbers',
    ]);
    expect(checkTrace({ traceEvents: [{ name: 'r', ph: 's', ts: 5, pid: 1, tid: 0, id: 3 }] })).toEqual([
      'event 0: flow s 3 on track 1/0 is not inside a span',
      'flow 3: 1 start(s) and 0 end(s); a flow links exactly one start to one end',
    ]);
    expect(checkTrace({ traceEvents: [{ name: 'a', ph: 'X', ts: 1, pid: 1, tid: 1 }] })[0]).toMatch(
      /^traceEvents\.0\.ph: Invalid enum value/,
    );
  });
});

describe('--trace on the commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'percpu-trace-'));
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 90_000 });
  const read = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as ChromeTrace;

  it('run on worker threads: workload phases hold their CPU requests', () => {
    const f = join(dir, 'run.json');
    const r = cli('run', 'churn', '--seed', '3', '--cpus', '3', '--arg', 'ops=60', '--trace', f);
    expect(r.status, r.stderr).toBe(0);
    const t = read(f);
    expect(checkTrace(t)).toEqual([]);
    const phases = spans(t, PID_CPUS, 'phase');
    expect(phases.filter((p) => p.name === 'run()').length).toBe(3);
    expect(spans(t, PID_CPUS, 'request').length).toBeGreaterThan(3 * 60);
    // no overlapping-request lanes: each CPU waits for its reply
    expect([...threadNames(t, PID_CPUS).values()].sort()).toEqual(['CPU 0', 'CPU 1', 'CPU 2']);
    // one teardown on CPU 0: the workload's phase; the machine's own clean-up after it is "shutdown"
    const demo = join(dir, 'demo.json');
    const d = cli('run', 'demo', '--seed', '2', '--cpus', '2', '--arg', 'ops=20', '--arg', 'adds=100', '--trace', demo);
    expect(d.status, d.stderr).toBe(0);
    const dt = read(demo);
    const cpu0 = [...threadNames(dt, PID_CPUS)].find(([, n]) => n === 'CPU 0')![0];
    const names = new Set(
      dt.traceEvents.filter((e) => e.ph === 'B' && e.pid === PID_CPUS && e.tid === cpu0).map((e) => e.name),
    );
    expect([...names].filter((n) => /teardown/.test(n))).toEqual(['teardown()']);
    expect(
      spans(dt, PID_CPUS, 'request')
        .filter((e) => e.name === 'shutdown')
        .map((e) => e.args!.kind),
    ).toContain('teardown');
  });

  it('stress --schedule and replay-run of a saved run', () => {
    const sched = join(dir, 'sched.json');
    const s = cli(
      'stress',
      '--scenario',
      'extend-vs-free',
      '--mutant',
      'extend-stale-walk',
      '--schedule',
      '0.64,0.64,0.64,0.64,0.64,0.64,0.64,0.64,0.64,1.0,1.0,1.0,1.0,1.0,1.0',
      '--trace',
      sched,
    );
    expect(s.status).toBe(1);
    const t = read(sched);
    expect(checkTrace(t)).toEqual([]);
    expect(t.traceEvents.filter((e) => e.ph === 'i' && e.s === 'g').map((e) => e.args!.text)).toEqual([
      '[kernel-bug/LIST_CORRUPTION] cpu 0: pcpu_alloc: chunk 0 moved to slot 11 while the walk of slot 10 had pcpu_lock dropped',
    ]);

    const saved = join(dir, 'run-log.json');
    expect(cli('run', 'demo', '--seed', '2', '--arg', 'ops=50', '--arg', 'adds=1000', '--save', saved).status).toBe(0);
    const rt = join(dir, 'replayed.json');
    const rr = cli('replay-run', saved, '--trace', rt);
    expect(rr.status, rr.stderr).toBe(0);
    expect(checkTrace(read(rt))).toEqual([]);
    expect(spans(read(rt), PID_CPUS, 'request').length).toBe(
      (JSON.parse(readFileSync(saved, 'utf8')).log as ActorEvent[]).filter((e) => e.type === 'arrive' && e.cpu >= 0)
        .length,
    );
  });

  it('refuses a trace of a whole exploration, and a path it cannot write', () => {
    const r = cli('stress', '--explore', '--scenario', 'modules', '--trace', join(dir, 'x.json'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--trace and --html draw one run; an exploration runs many');
    const bad = cli('run', '--trace', dir);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`--trace ${dir}: that is a directory; give a file name`);
  });
});
