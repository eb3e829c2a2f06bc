/**
 * The HTML report: one self-contained file (nothing fetched, nothing linked), with the verdict,
 * the boot layout, the snapshots the slider draws, the CPU table, percpu_stats, and the events
 * around each violation. The browser check (npm run check:browser) opens it for real.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { htmlReport } from '../../src/report/html.ts';
import { TimelineRecorder } from '../../src/report/timeline.ts';
import { recordHooks, stressPage } from '../../src/cli/reports.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';

const frames = (html: string) =>
  JSON.parse(/<script type="application\/json" id="frames">(.*?)<\/script>/s.exec(html)![1]!) as {
    unitSize: number;
    frames: {
      seq: number;
      tick: number;
      label: string;
      chunks: [string, number, number[], string, number, number][];
    }[];
  };

/** Nothing in the page may come from elsewhere: no src, no href, no url(), no import. */
function externalRefs(html: string): string[] {
  return [
    ...html.matchAll(/\b(?:src|href)\s*=\s*["']?([^"'\s>]+)|url\(([^)]*)\)|@import|\bfetch\(|XMLHttpRequest/g),
  ].map((m) => m[0]);
}

describe('html report', () => {
  it('a failing stress run: verdict, replay command, violation with the events before it, maps over time', async () => {
    const rec = new TimelineRecorder();
    const cfg = {
      ...DEFAULT_STRESS,
      seed: 1,
      mutant: 'populate-no-zero' as const,
      args: { ...DEFAULT_STRESS.args, ops: 200 },
    };
    const r = await runStress(cfg, recordHooks(rec));
    const page = stressPage(r, 'percpu-sim stress --seed 1 --mutant populate-no-zero', rec);
    const html = htmlReport({ ...page, timeline: rec.finish() });
    expect(externalRefs(html)).toEqual([]);
    expect(html).toContain('<b id="verdict-label">VIOLATION</b>');
    expect(html).toContain('seed <code id="seed">1</code>');
    // each word of the command unbreakable, so that its lines break at spaces only
    expect(html).toContain(
      '<code id="replay"><span class="w">percpu-sim</span> <span class="w">stress</span> <span class="w">--seed</span> <span class="w">1</span> <span class="w">--mutant</span> <span class="w">populate-no-zero</span></code>',
    );
    expect(html).toContain('.w{white-space:nowrap}');
    const v = r.violations[0]!;
    expect(html).toContain(`<b>violation 1</b> at tick ${v.tick}: [isolation/nonzero-new-area] cpu 0:`);
    // the cause: whose bytes the new area holds, who allocated and freed them, and when
    expect(html).toContain(
      '<ul class="cause"><li>the area: allocation #4, 12 bytes at chunk 0 offset 28192 (0x6e20), pointer 0xfff00016e20, allocated by cpu 0 (task 4, tick 24); still live</li>' +
        "<li>its bytes were allocation #2's in cpu 0's copy: 28 bytes at chunk 0 offset 28192 (0x6e20), pointer 0xfff00016e20, allocated by cpu 0 (task 1, tick 6); freed by cpu 0 (task 3): asked at tick 12, done at tick 18</li></ul>",
    );
    // the events: those of the three tasks involved, from the first allocation to the dirty one
    const around = /<pre class="around">([^<]*)<\/pre>/.exec(html)![1]!.split('\n');
    expect(html).toContain(
      "the events of tasks 1, 3, 4 (the allocations and frees involved), without the scheduler's run and preempt steps",
    );
    expect(around[0]).toBe('#4 t0 cpu0 task 1 arrive alloc size=28 align=8');
    expect(around).toContain('#42 t12 cpu0 task 3 arrive free ptr=0xfff00016e20');
    expect(around).toContain('#51 t16 cpu0 task 3 trace gave back chunk 0 off 28192');
    expect(around).toContain('#54 t17 cpu0 task 3 trace freed chunk 0 off 28192');
    expect(around.at(-1)).toBe(
      '#77 t24 cpu0 task 4 done alloc: {&quot;ok&quot;:true,&quot;ptr&quot;:&quot;0xfff00016e20&quot;,&quot;chunk&quot;:0,&quot;off&quot;:28192,&quot;size&quot;:12}',
    );
    expect(around.filter((l) => / run$| preempted /.test(l))).toEqual([]);
    expect(new Set(around.map((l) => / task (\d+) /.exec(l)![1]))).toEqual(new Set(['1', '3', '4']));
    // pointers in hex only
    expect(html).not.toContain(String(0xfff00016e20));
    // a close-up of the 12-byte area and of the 28 bytes that were allocation #2's
    const zoom = /<svg class="zoom".*?<\/svg>/s.exec(html)![0];
    expect(zoom).toContain('<text x="260.4" y="14" class="t">allocation #4: 0x6e20..0x6e2c (12 bytes)</text>');
    expect(zoom).toContain('class="zoom-area"><title>allocation #4: offset 28192 (0x6e20), 12 bytes</title>');
    expect(zoom).toContain('class="zoom-prev"><title>allocation #2 (before): offset 28192 (0x6e20), 28 bytes</title>');
    expect(
      Number(/<rect x="[\d.]+" y="22" width="([\d.]+)" height="26" class="zoom-area">/.exec(zoom)![1]),
    ).toBeGreaterThan(90);
    // every CPU has its row, those that asked nothing too
    expect([...html.matchAll(/<tr><td class="n">(\d+)<\/td>/g)].map((m) => m[1])).toEqual(['0', '1', '2']);
    // the rerun command wraps at spaces only
    expect(html).not.toContain('break-all');
    // the unit bar says which colour is which part of a unit
    expect(
      [...html.matchAll(/<g class="legend-item">.*?class="(\w+)"\/><text[^>]*>([^<]*)<\/text><\/g>/g)].map(
        (m) => `${m[1]} ${m[2]}`,
      ),
    ).toEqual(['st static 20000', 'rs reserved 8192', 'dy dynamic 20960', 'un unused 16384']);
    // the boot lines come before the long percpu_stats dump
    expect(html.indexOf('<h2>Boot lines</h2>')).toBeGreaterThan(0);
    expect(html.indexOf('<h2>Boot lines</h2>')).toBeLessThan(html.indexOf('<h2>percpu_stats</h2>'));
    // snapshots: the first after boot, the last the state when the run stopped
    const f = frames(html);
    expect(f.unitSize).toBe(65536);
    expect(f.frames[0]!.label).toBe('after boot');
    const last = f.frames.at(-1)!;
    const first = last.chunks.find((c) => c[0] === '0')!;
    // static 20000 + reserved 8192 as the head, then the areas handed out
    expect(first[1]).toBe(1);
    expect(first[2][0]).toBe(-28192);
    expect(first[2].reduce((a, e) => a + Math.abs(e), 0)).toBe(28192 + 20960);
    // the layout: one group, one unit per CPU
    expect(html.match(/<g class="unit" data-cpu="\d+">/g)!.length).toBe(r.config.cpus);
  });

  it('groups identical violations: one block with its count and ticks; past three of a kind, one line each', () => {
    const rec = new TimelineRecorder();
    const v = (tick: number, message: string) =>
      ({ checker: 'isolation', kind: 'foreign-unit', cpu: 1, tick, message }) as const;
    for (let i = 0; i < 64; i++)
      rec.violation(7 + (i % 2), '[isolation/foreign-unit] cpu 1: the same', v(7 + (i % 2), 'the same'));
    for (let i = 0; i < 4; i++) rec.violation(9, `[isolation/foreign-unit] cpu 1: other ${i}`, v(9, `other ${i}`));
    rec.violation(10, '[locks/order] cpu 0: a lock', {
      checker: 'locks',
      kind: 'order',
      cpu: 0,
      tick: 10,
      message: 'x',
    });
    const html = htmlReport({
      title: 't',
      verdict: { label: 'VIOLATION', ok: false, seed: 1, replay: 'percpu-sim stress', notes: [] },
      timeline: rec.finish(),
    });
    expect(html).toContain('<h2>Violations (69)</h2>');
    expect(html).toContain(
      '<b>violation 1</b> 64 times, at ticks 7, 8: [isolation/foreign-unit] cpu 1: the same <button data-tick="7">',
    );
    expect(html.match(/<div class="violation"/g)!.length).toBe(4);
    expect(html).toContain(
      '<details class="more"><summary>2 more violation(s) of the kinds above, one line each</summary><ul>' +
        '<li class="brief"><b>violation 4</b> at tick 9: [isolation/foreign-unit] cpu 1: other 2</li>' +
        '<li class="brief"><b>violation 5</b> at tick 9: [isolation/foreign-unit] cpu 1: other 3</li></ul></details>',
    );
    expect(html).toContain('<b>violation 6</b> at tick 10: [locks/order] cpu 0: a lock');
  });

  it('keeps a bounded number of snapshots over a long run, the last one at its end', async () => {
    const rec = new TimelineRecorder();
    const r = await runStress(
      { ...DEFAULT_STRESS, seed: 2, args: { ...DEFAULT_STRESS.args, ops: 600 } },
      recordHooks(rec),
    );
    const t = rec.finish();
    expect(t.frames.length).toBeLessThanOrEqual(256);
    expect(t.frames.length).toBeGreaterThan(100);
    expect(t.frames.at(-1)!.seq).toBe(t.events.at(-1)!.seq);
    // spread over the run, in order
    const seqs = t.frames.map((f) => f.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(r.verdict).toBe('clean');
  });

  const dir = mkdtempSync(join(tmpdir(), 'percpu-html-'));
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 90_000 });

  it('run on two nodes: the layout draws each CPU in its node group; the CPU table has every CPU', () => {
    const f = join(dir, 'run.html');
    const r = cli('run', 'churn', '--seed', '5', '--cpus', '4', '--nodes', '2', '--arg', 'ops=40', '--html', f);
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(f, 'utf8');
    expect(externalRefs(html)).toEqual([]);
    expect(html).toContain('<b id="verdict-label">PASS</b>');
    const groups = [...html.matchAll(/<g class="group" data-group="(\d)">(.*?)<\/g><\/g>/gs)].map((m) =>
      [...m[2]!.matchAll(/CPU (\d)<\/text>/g)].map((x) => Number(x[1])),
    );
    expect(groups).toEqual([
      [0, 1],
      [2, 3],
    ]);
    const rows = [...html.matchAll(/<tr><td class="n">(\d+)<\/td><td class="n">(\d+)<\/td>/g)].map((m) => [
      Number(m[1]),
      Number(m[2]),
    ]);
    expect(rows).toEqual([
      [0, 0],
      [1, 0],
      [2, 1],
      [3, 1],
    ]);
    expect(html).toContain('<pre id="stats">Percpu Memory Statistics');
    // the counters: axes with labels, one scale for every series, and steps rather than slopes
    const chart = /<svg id="counters-svg".*?<\/svg>/s.exec(html)![0];
    expect(chart).toContain('class="t">scheduler tick</text>');
    expect(chart).toMatch(/text-anchor="end" class="t">0<\/text>/);
    const series = Object.fromEntries(
      [...chart.matchAll(/data-series="(\w+)" points="([^"]*)"/g)].map((m) => [
        m[1]!,
        m[2]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]),
      ]),
    );
    expect(Object.keys(series)).toEqual(['live_areas', 'chunks', 'populated_pages']);
    for (const pts of Object.values(series))
      for (let i = 1; i < pts.length; i++)
        expect(pts[i]![0] === pts[i - 1]![0] || pts[i]![1] === pts[i - 1]![1]).toBe(true);
    const maxOf = (k: string) => Number(new RegExp(`${k} \\(max (\\d+)\\)`).exec(chart)![1]);
    const topY = (k: string) => Math.min(...series[k]!.map((p) => p[1]));
    // on one scale, a smaller maximum is drawn lower
    expect(maxOf('chunks')).toBeLessThan(maxOf('live_areas'));
    expect(topY('chunks')).toBeGreaterThan(topY('live_areas'));
  });

  it('replay: the maps follow the trace line by line; a bad line is shown with the lines before it', () => {
    const trace = join(dir, 'ops.jsonl');
    const lines = [
      { op: 'boot', static_size: 20000, reserved_size: 8192, dyn_size: 20480 },
      { op: 'alloc', id: 'a', size: 16, align: 8 },
      { op: 'alloc', id: 'b', size: 64, align: 64 },
      { op: 'free', id: 'a' },
      { op: 'free', id: 'zz' },
    ];
    writeFileSync(trace, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const f = join(dir, 'replay.html');
    const r = cli('replay', trace, '--html', f);
    expect(r.status).toBe(2);
    const html = readFileSync(f, 'utf8');
    expect(html).toContain('<b id="verdict-label">STOPPED</b>');
    expect(html).toContain('<b>violation 1</b> at line 5: line 5: id &quot;zz&quot; was never allocated');
    const around = /<pre class="around">([^<]*)<\/pre>/.exec(html)![1]!.split('\n');
    expect(around.map((l) => l.slice(0, 3))).toEqual(['1: ', '2: ', '3: ', '4: ', '5: ']);
    const fr = frames(html);
    expect(fr.frames.map((x) => x.label.slice(0, 7))).toEqual(['after b', 'line 1:', 'line 2:', 'line 3:', 'line 4:']);
    const dyn = (i: number) => fr.frames[i]!.chunks.find((c) => c[0] === '0')![2];
    expect(dyn(1)).toEqual([-28192, 20960]);
    expect(dyn(2)).toEqual([-28192, -16, 20944]);
    expect(dyn(3)).toEqual([-28192, -16, 16, -64, 20864]);
    expect(dyn(4)).toEqual([-28192, 32, -64, 20864]);
    // a trace has no CPUs: the table counts the operations
    expect(html).toContain(
      '<h2>Operations</h2>\n<table id="cpus"><thead><tr><th>operations replayed before the bad line</th></tr></thead><tbody><tr><td class="n">4</td></tr></tbody></table>',
    );
    expect(html).toContain(
      `<code id="replay"><span class="w">percpu-sim</span> <span class="w">replay</span> <span class="w">${trace}</span></code>`,
    );
  });

  it('replay from standard input: no rerun command that would wait for input, and the operations counted', () => {
    const f = join(dir, 'stdin.html');
    const r = spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'replay', '-', '--html', f], {
      encoding: 'utf8',
      timeout: 90_000,
      input:
        '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}\n{"op":"alloc","id":"a","size":16,"align":8}\n{"op":"free","id":"a"}\n',
    });
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(f, 'utf8');
    expect(html).not.toContain('id="replay"');
    expect(html).not.toContain('&lt;stdin&gt;</code>');
    expect(html).toContain('<div>the trace came on standard input: save it to a file to replay it again</div>');
    expect(html).toContain(
      '<h2>Operations</h2>\n<table id="cpus"><thead><tr><th>operations</th><th>allocations</th><th>failed</th><th>frees</th></tr></thead><tbody><tr><td class="n">3</td><td class="n">1</td><td class="n">0</td><td class="n">1</td></tr></tbody></table>',
    );
  });
});
