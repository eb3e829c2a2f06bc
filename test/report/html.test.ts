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
    expect(html).toContain('<code id="replay">percpu-sim stress --seed 1 --mutant populate-no-zero</code>');
    const v = r.violations[0]!;
    expect(html).toContain(`<b>violation 1</b> at tick ${v.tick}: [isolation/nonzero-new-area] cpu 0:`);
    // the events around it end with the reply that handed out the dirty area
    const around = /<pre class="around">([^<]*)<\/pre>/.exec(html)![1]!.split('\n');
    expect(around.at(-1)).toMatch(/^#\d+ t24 cpu0 task 4 done alloc: /);
    expect(around.length).toBe(15);
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
  });
});
