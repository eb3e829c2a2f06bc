/**
 * A run as one self-contained HTML page: no network, no other files, so that it opens from a
 * file:// URL and can be attached to a bug report. It shows the verdict with the seed and the
 * command that replays it, the first chunk's layout (groups, units, CPUs, nodes), every chunk's
 * map over time under a slider, the counters, the per-CPU table, the boot lines, the
 * percpu_stats dump and, for each kind of violation, its cause: the allocations involved, the
 * events of the tasks that made and freed them, and a close-up of the area.
 *
 * Everything but the map drawing is rendered here; the snapshots travel as JSON in the page
 * and a small script draws the one the slider points at.
 */
import type { ActorEvent } from '../sim/events.ts';
import { type Zoom, causeOf, excerpt, hex } from './cause.ts';
import type { BootLayout, Frame, Timeline, TimelineViolation } from './timeline.ts';
import {
  COVERAGE_FUNCTIONS,
  type CoverageTable,
  SLEEP_POINTS,
  neverOverlapped,
  orderPairs,
  pairKey,
} from '../check/coverage.ts';

export interface Verdict {
  /** one word: PASS, FAIL, CLEAN, VIOLATION, TIMEOUT, REPLAYED, STOPPED */
  label: string;
  ok: boolean;
  seed: number | null;
  /** the command that reruns exactly this */
  replay: string | null;
  /** further lines under the verdict */
  notes: string[];
}

export interface ReportPage {
  title: string;
  verdict: Verdict;
  timeline: Timeline;
  /** per-CPU rows; without them, each CPU's requests are counted from the event log */
  cpuTable?: {
    columns: string[];
    rows: (string | number)[][];
    /** the section's name (default: CPUs) */ title?: string;
  };
  /** for runs without actor events (a replayed trace): the lines around each violation */
  around?: (v: { tick: number; text: string }) => string[];
  /** what a violation's position counts (default: scheduler ticks) */
  position?: 'tick' | 'line';
  /** the percpu_stats dump to show, when the run took it at a better moment than its end */
  stats?: string;
  /** what the run tried (src/check/coverage.ts), drawn as a heat map */
  coverage?: CoverageTable;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const NODE_COLOURS = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#b07aa1',
  '#76b7b2',
  '#edc948',
  '#ff9da7',
  '#9c755f',
  '#e15759',
  '#bab0ac',
];

/** A command whose lines break only at its spaces: each word kept whole (a hyphen is no place to break "--fail-rate"). */
const words = (s: string): string =>
  s
    .split(' ')
    .map((w) => `<span class="w">${esc(w)}</span>`)
    .join(' ');

/** Requests, allocations, failures and frees of each CPU, from the event log; every CPU below `cpus` has a row. */
export function cpuCounts(events: readonly ActorEvent[], cpus = 0): { columns: string[]; rows: (string | number)[][] } {
  const by = new Map<
    number,
    { requests: number; allocs: number; failed: number; frees: number; refused: number; bytes: number }
  >();
  const get = (cpu: number) =>
    by.get(cpu) ?? (by.set(cpu, { requests: 0, allocs: 0, failed: 0, frees: 0, refused: 0, bytes: 0 }), by.get(cpu)!);
  for (let cpu = 0; cpu < cpus; cpu++) get(cpu);
  for (const e of events) {
    if (e.cpu < 0) continue;
    if (e.type === 'arrive') get(e.cpu).requests++;
    else if (e.type === 'refuse') get(e.cpu).refused++;
    else if (e.type === 'done') {
      const c = get(e.cpu);
      const replies = 'batch' in e.reply ? e.reply.batch : [e.reply];
      for (const r of replies) {
        if (e.kind.startsWith('alloc')) {
          if (r.ok && 'size' in r) {
            c.allocs++;
            c.bytes += r.size;
          } else if (!r.ok) c.failed++;
        }
      }
      if (e.kind.startsWith('free') && e.reply.ok && 'freed' in e.reply) c.frees += e.reply.freed;
    }
  }
  const rows = [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([cpu, c]) => [cpu, c.requests, c.allocs, c.failed, c.frees, c.refused, c.bytes]);
  return { columns: ['cpu', 'requests', 'allocated', 'failed', 'freed', 'refused', 'bytes allocated'], rows };
}

/** Width of `n` characters of monospace text at `px` pixels, with a little to spare. */
const textWidth = (n: number, px: number): number => Math.ceil(n * px * 0.62) + 2;

function layoutSvg(l: BootLayout): string {
  const unitLines = l.groups.flatMap((g) =>
    g.units.map((u) => [
      u.cpu === null ? 'no CPU' : `CPU ${u.cpu}`,
      u.cpu === null ? '' : `unit ${u.unit}, node ${u.node}`,
    ]),
  );
  // a box holds its two lines: the CPU in bold 12 px, the unit and node in 10 px
  const UW = Math.max(
    96,
    12 + Math.max(...unitLines.map(([a, b]) => Math.max(textWidth(a!.length, 12), textWidth(b!.length, 10)))),
  );
  const UH = 44;
  const units = Math.max(1, ...l.groups.map((g) => g.units.length));
  // at most as wide as the page, and a row of units to a line
  const W = Math.max(720, Math.min(units * UW, 1120));
  const perRow = Math.max(1, Math.floor(W / UW));
  const rowsOf = (n: number): number => Math.max(1, Math.ceil(n / perRow));
  let y = 92;
  const parts: string[] = [];
  // one unit, to scale: static | reserved | dynamic | unused
  const seg = (x0: number, size: number, cls: string, name: string): string => {
    const w = (size / l.unitSize) * W;
    return `<rect x="${(8 + x0).toFixed(1)}" y="22" width="${Math.max(w, 1).toFixed(1)}" height="18" class="${cls}"><title>${name}: ${size} bytes</title></rect>`;
  };
  let x = 0;
  const inUnit: [number, string, string][] = [
    [l.staticSize, 'st', 'static'],
    [l.reservedSize, 'rs', 'reserved'],
    [l.dynSize, 'dy', 'dynamic'],
    [l.unitSize - l.staticSize - l.reservedSize - l.dynSize, 'un', 'unused'],
  ];
  let lx = 8;
  for (const [size, cls, name] of inUnit) {
    if (size <= 0) continue;
    parts.push(seg(x, size, cls, name));
    x += (size / l.unitSize) * W;
    const text = `${name} ${size}`;
    parts.push(
      `<g class="legend-item"><rect x="${lx}" y="48" width="12" height="12" class="${cls}"/><text x="${lx + 16}" y="58" class="t">${text}</text></g>`,
    );
    lx += 16 + textWidth(text.length, 11) + 14;
  }
  parts.push(
    `<text x="8" y="14" class="t">one unit (${l.unitSize} bytes): static ${l.staticSize}, reserved ${l.reservedSize}, dynamic ${l.dynSize}; atom ${l.atomSize}</text>`,
  );
  for (const g of l.groups) {
    const h = rowsOf(g.units.length) * (UH + 6) + 24;
    parts.push(
      `<g class="group" data-group="${g.index}"><rect x="4" y="${y}" width="${W + 8}" height="${h}" class="gb"/>`,
    );
    parts.push(
      `<text x="10" y="${y + 15}" class="t">group ${g.index}: base offset 0x${g.offset.toString(16)}, ${g.units.length} unit(s), ${g.size} bytes</text>`,
    );
    g.units.forEach((u, i) => {
      const ux = 8 + (i % perRow) * UW;
      const uy = y + 22 + Math.floor(i / perRow) * (UH + 6);
      const fill = u.cpu === null ? '#ddd' : NODE_COLOURS[(u.node ?? 0) % NODE_COLOURS.length];
      parts.push(
        `<g class="unit" data-cpu="${u.cpu ?? ''}"><rect x="${ux}" y="${uy}" width="${UW - 6}" height="${UH}" fill="${fill}" rx="3"/>` +
          `<text x="${ux + 5}" y="${uy + 16}" class="u">${u.cpu === null ? 'no CPU' : `CPU ${u.cpu}`}</text>` +
          `<text x="${ux + 5}" y="${uy + 32}" class="v">${u.cpu === null ? '' : `unit ${u.unit}, node ${u.node}`}</text>` +
          `<title>unit at offset 0x${u.offset.toString(16)}${u.cpu === null ? ', no CPU' : `: CPU ${u.cpu}, node ${u.node}`}</title></g>`,
      );
    });
    parts.push('</g>');
    y += h + 10;
  }
  return `<svg id="layout-svg" xmlns="http://www.w3.org/2000/svg" width="${W + 20}" height="${y}" font-family="monospace">${parts.join('')}</svg>`;
}

function table(columns: string[], rows: (string | number)[][], id: string): string {
  return `<table id="${id}"><thead><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${rows
    .map(
      (r) =>
        `<tr>${r.map((v) => `<td${typeof v === 'number' ? ' class="n"' : ''}>${esc(String(v))}</td>`).join('')}</tr>`,
    )
    .join('')}</tbody></table>`;
}

/**
 * The coverage table as a heat map of kernel function x kernel function (how often one ran
 * while the other was in flight; the shade grows with the logarithm of the count, an empty
 * cell never happened), then the sleep points, the access pairs by order and what never overlapped.
 */
function coverageSection(c: CoverageTable): string {
  const fns = COVERAGE_FUNCTIONS;
  const max = Math.max(1, ...Object.values(c.overlaps));
  const cell = (f: string, g: string): string => {
    const n = c.overlaps[pairKey(f, g)] ?? 0;
    const a = n ? 0.15 + (0.85 * Math.log1p(n)) / Math.log1p(max) : 0;
    return `<td class="n" title="${esc(`${f} x ${g}: ${n}`)}" style="background:rgba(214,39,40,${a.toFixed(2)})">${n || ''}</td>`;
  };
  const heat = `<table class="heat" id="coverage-heat"><thead><tr><th></th>${fns.map((f) => `<th class="v"><span>${esc(f)}</span></th>`).join('')}</tr></thead><tbody>${fns
    .map((f) => `<tr><th>${esc(f)}</th>${fns.map((g) => cell(f, g)).join('')}</tr>`)
    .join('')}</tbody></table>`;
  const sleeps = table(
    ['sleep point', 'reached', 'with another CPU inside the allocator'],
    SLEEP_POINTS.map((p) => [p, c.sleeps[p]?.[0] ?? 0, c.sleeps[p]?.[1] ?? 0]),
    'coverage-sleeps',
  );
  const { both, one } = orderPairs(c);
  const never = neverOverlapped(c);
  const list = (title: string, xs: string[], id: string): string =>
    `<details id="${id}"><summary>${esc(title)} (${xs.length})</summary><pre>${esc(xs.join('\n') || '(none)')}</pre></details>`;
  return `${heat}
<p class="legend" style="font-size:12px;color:#555">steps one function ran while the other was in flight on another CPU (darker: more; empty: never)</p>
${sleeps}
${list('conflicting accesses seen in both orders', both, 'coverage-both')}
${list('conflicting accesses seen in one order only', one, 'coverage-one')}
${list('never overlapped', never, 'coverage-never')}
${list(
  'lock contention (lock waiter<owner)',
  Object.entries(c.contended).map(([k, n]) => `${k}  ${n}`),
  'coverage-contended',
)}
${list(
  'lifecycle states and failure reasons',
  [...Object.entries(c.states), ...Object.entries(c.failures)].map(([k, n]) => `${k}  ${n}`),
  'coverage-states',
)}`;
}

/** Bytes either side of the area in a close-up, at least. */
const ZOOM_PAD = 32;

/**
 * A chunk's map around one area, drawn large: the area hit outlined in red, the area that
 * held its bytes before dashed under it, every map entry in the window with its offset.
 */
function zoomSvg(z: Zoom, frame: Frame | undefined): string {
  const c = frame?.chunks.find((x) => x.name === z.chunk);
  if (!frame || !c) return '';
  const spans = [z.area, ...(z.previous ? [z.previous] : [])];
  const from = Math.min(...spans.map((x) => x.offset));
  const to = Math.max(...spans.map((x) => x.offset + x.size));
  const pad = Math.max(ZOOM_PAD, to - from);
  const lo = Math.max(0, from - pad);
  const hi = to + pad;
  const W = 720;
  const X = 10;
  const sx = (off: number): number => X + ((Math.min(Math.max(off, lo), hi) - lo) / (hi - lo)) * W;
  const parts: string[] = [];
  let off = 0;
  c.map.forEach((e, k) => {
    const size = Math.abs(e);
    const end = off + size;
    if (end > lo && off < hi) {
      const cls = k === 0 && c.head ? 'h' : e < 0 ? 'a' : 'f';
      parts.push(
        `<rect x="${sx(off).toFixed(1)}" y="22" width="${Math.max(sx(end) - sx(off), 0.5).toFixed(1)}" height="26" class="${cls}" stroke="#fff" stroke-width="0.5"><title>${e < 0 ? 'in use' : 'free'}: offset ${off} (${hex(off)}), ${size} bytes</title></rect>`,
      );
    }
    off = end;
  });
  const mark = (x: { offset: number; size: number; label: string }, y: number, cls: string): string =>
    `<rect x="${sx(x.offset).toFixed(1)}" y="${y}" width="${Math.max(sx(x.offset + x.size) - sx(x.offset), 1).toFixed(1)}" height="${cls === 'zoom-area' ? 26 : 6}" class="${cls}"><title>${x.label}: offset ${x.offset} (${hex(x.offset)}), ${x.size} bytes</title></rect>` +
    // a label right of the middle ends at its area's right edge, so that it stays inside the picture
    (sx(x.offset) > X + W / 2
      ? `<text x="${sx(x.offset + x.size).toFixed(1)}" text-anchor="end"`
      : `<text x="${sx(x.offset).toFixed(1)}"`) +
    ` y="${cls === 'zoom-area' ? 14 : y + 18}" class="t">${x.label}: ${hex(x.offset)}..${hex(x.offset + x.size)} (${x.size} bytes)</text>`;
  parts.push(mark(z.area, 22, 'zoom-area'));
  if (z.previous) parts.push(mark(z.previous, 52, 'zoom-prev'));
  parts.push(
    `<text x="${X}" y="${z.previous ? 88 : 66}" class="s">chunk ${z.chunk}, offsets ${hex(lo)}..${hex(hi)} (${lo}..${hi}); ${frame.label}</text>`,
  );
  return `<svg class="zoom" xmlns="http://www.w3.org/2000/svg" width="${W + 2 * X}" height="${z.previous ? 94 : 72}" font-family="monospace">${parts.join('')}</svg>`;
}

/** The snapshot to draw a violation at: the last one taken by the tick it was found at. */
function frameAt(frames: readonly Frame[], tick: number): Frame | undefined {
  return frames.findLast((f) => f.tick <= tick) ?? frames[0];
}

/** Groups of a kind past this many are listed one line each, without their events. */
const FULL_GROUPS_PER_KIND = 3;

/** The violations: identical ones (the same line) together, each group with its cause and events. */
function violationsHtml(p: ReportPage): string[] {
  const t = p.timeline;
  const groups = new Map<string, TimelineViolation[]>();
  for (const v of t.violations) groups.set(v.text, [...(groups.get(v.text) ?? []), v]);
  const perKind = new Map<string, number>();
  const full: string[] = [];
  const brief: string[] = [];
  let n = 0;
  for (const [text, list] of groups) {
    const v = list[0]!;
    const kind = v.kind ?? /^\[([^\]]+)\]/.exec(text)?.[1] ?? '';
    const shown = perKind.get(kind) ?? 0;
    perKind.set(kind, shown + 1);
    const at = p.position ?? 'tick';
    const ticks = [...new Set(list.map((x) => x.tick))];
    const when =
      list.length > 1
        ? `${list.length} times, at ${at}${ticks.length > 1 ? 's' : ''} ${ticks.slice(0, 12).join(', ')}${ticks.length > 12 ? ', ...' : ''}`
        : `at ${at} ${v.tick}`;
    const head = `<b>violation ${++n}</b> ${when}: ${esc(text)}`;
    if (shown >= FULL_GROUPS_PER_KIND) {
      brief.push(`<li class="brief">${head}</li>`);
      continue;
    }
    const cause = causeOf(v, t.events);
    const around = p.around ? p.around(v) : excerpt(t.events, v.tick, cause.tasks);
    const filtered = !p.around && cause.tasks.length > 0;
    const zoom = cause.zoom ? zoomSvg(cause.zoom, frameAt(t.frames, v.tick)) : '';
    full.push(
      `<div class="violation" id="violation-${full.length}"><div>${head} <button data-tick="${v.tick}">show the maps then</button></div>` +
        (cause.lines.length ? `<ul class="cause">${cause.lines.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>` : '') +
        zoom +
        (around.length
          ? `<div class="excerpt-note">${filtered ? `the events of task${cause.tasks.length > 1 ? 's' : ''} ${cause.tasks.join(', ')} (the allocations and frees involved), without the scheduler's run and preempt steps` : 'the events just before it'}</div><pre class="around">${esc(around.join('\n'))}</pre>`
          : '') +
        '</div>',
    );
  }
  if (brief.length)
    full.push(
      `<details class="more"><summary>${brief.length} more violation(s) of the kinds above, one line each</summary><ul>${brief.join('')}</ul></details>`,
    );
  return full;
}

/** A round step for an axis: 1, 2 or 5 times a power of ten, giving about `n` steps up to `max`. */
function niceStep(max: number, n: number): number {
  const raw = Math.max(1, max / n);
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

/**
 * The counters over the run on one scale, with axes: each value holds until the next sample,
 * so a series is drawn as steps, never as a slope between two samples.
 */
function countersSvg(t: Timeline, xName: string): string {
  if (t.counters.length < 2) return '';
  const keys = ['live_areas', 'chunks', 'populated_pages'] as const;
  const W = 820;
  const H = 160;
  const L = 56; // the y axis and its labels
  const T = 10;
  const first = t.counters[0]!.tick;
  const last = Math.max(first + 1, t.counters.at(-1)!.tick);
  const top = Math.max(1, ...t.counters.flatMap((c) => keys.map((k) => c[k])));
  const yStep = niceStep(top, 4);
  const yMax = Math.ceil(top / yStep) * yStep;
  const sx = (tick: number): number => L + ((tick - first) / (last - first)) * W;
  const sy = (v: number): number => T + H - (v / yMax) * H;
  const parts: string[] = [];
  for (let v = 0; v <= yMax; v += yStep)
    parts.push(
      `<line x1="${L}" x2="${L + W}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" class="grid"/><text x="${L - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end" class="t">${v}</text>`,
    );
  const xStep = niceStep(last - first, 6);
  for (let k = Math.ceil(first / xStep) * xStep; k <= last; k += xStep)
    parts.push(
      `<line x1="${sx(k).toFixed(1)}" x2="${sx(k).toFixed(1)}" y1="${T + H}" y2="${T + H + 4}" class="axis"/><text x="${sx(k).toFixed(1)}" y="${T + H + 16}" text-anchor="middle" class="t">${k}</text>`,
    );
  parts.push(
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${T + H}" class="axis"/><line x1="${L}" x2="${L + W}" y1="${T + H}" y2="${T + H}" class="axis"/>`,
    `<text x="${L + W / 2}" y="${T + H + 32}" text-anchor="middle" class="t">${xName}</text>`,
  );
  keys.forEach((k, i) => {
    const pts: string[] = [];
    t.counters.forEach((c, j) => {
      if (j) pts.push(`${sx(c.tick).toFixed(1)},${sy(t.counters[j - 1]![k]).toFixed(1)}`);
      pts.push(`${sx(c.tick).toFixed(1)},${sy(c[k]).toFixed(1)}`);
    });
    pts.push(`${sx(last).toFixed(1)},${sy(t.counters.at(-1)![k]).toFixed(1)}`);
    const max = Math.max(...t.counters.map((c) => c[k]));
    parts.push(
      `<polyline class="series" data-series="${k}" points="${pts.join(' ')}" fill="none" stroke="${NODE_COLOURS[i]}" stroke-width="1.5"/>`,
      `<text x="${L + W + 12}" y="${T + 12 + i * 16}" fill="${NODE_COLOURS[i]}" class="t">${k} (max ${max})</text>`,
    );
  });
  return `<svg id="counters-svg" xmlns="http://www.w3.org/2000/svg" width="${L + W + 220}" height="${T + H + 40}" font-family="monospace">${parts.join('')}</svg>`;
}

/** The frames as compact JSON for the page's script. */
function framesJson(frames: readonly Frame[], unitSize: number): string {
  const data = {
    unitSize,
    frames: frames.map((f) => ({
      seq: f.seq,
      tick: f.tick,
      label: f.label,
      chunks: f.chunks.map((c) => [c.name, c.head ? 1 : 0, c.map, c.populated, c.free, c.contig]),
    })),
  };
  // in a script element, "<" must not open a tag
  return JSON.stringify(data).replace(/</g, '\\u003c');
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:12px 20px;color:#222}
h1{font-size:20px;margin:6px 0}h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #ccc}
.heat td{min-width:34px;text-align:right}.heat th.v{height:150px;vertical-align:bottom}.heat th.v span{writing-mode:vertical-rl;transform:rotate(180deg)}
pre{background:#f6f7f9;padding:8px;overflow:auto;font-size:12px;max-height:420px}#stats{max-height:none}
#verdict{padding:10px 14px;border-radius:6px;border:2px solid}
#verdict.ok{border-color:#59a14f;background:#eef7ec}#verdict.bad{border-color:#e15759;background:#fcecec}
#verdict b{font-size:18px}code{background:#f0f0f0;padding:1px 4px;overflow-wrap:anywhere}.w{white-space:nowrap}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px}td.n{text-align:right;font-variant-numeric:tabular-nums}
.controls{display:flex;gap:10px;align-items:center;margin:6px 0;flex-wrap:wrap}#frame{width:520px}
#frame-label{font-family:monospace;font-size:12px}
.violation{border-left:4px solid #e15759;padding:4px 10px;margin:10px 0;background:#fff8f8}
.cause{margin:6px 0;padding-left:20px}.excerpt-note{font-size:12px;color:#555;margin-top:6px}
svg .zoom-area{fill:none;stroke:#e15759;stroke-width:2}svg .zoom-prev{fill:#f28e2b;opacity:.8}
svg .t{font-size:11px}svg .u{font-size:12px;fill:#fff;font-weight:bold}svg .v{font-size:10px;fill:#fff}
svg .gb{fill:#fafafa;stroke:#999}svg .axis{stroke:#555}svg .grid{stroke:#eee}svg .st{fill:#444}svg .rs{fill:#b07aa1}svg .dy{fill:#4e79a7}svg .un{fill:#ddd}
svg .a{fill:#3b7dd8}svg .f{fill:#e4e8ee}svg .h{fill:#444}svg .p{fill:#5aa469}svg .l{font-size:12px}svg .s{font-size:9px;fill:#666}
`;

// Draws one frame of chunk maps; kept plain so that it runs in any browser without a build.
const SCRIPT = `
(function () {
  var D = JSON.parse(document.getElementById('frames').textContent);
  var slider = document.getElementById('frame');
  var label = document.getElementById('frame-label');
  var box = document.getElementById('maps');
  var W = 960, LEFT = 180, BAR = 20, STRIP = 4, GAP = 16, MAXROWS = 64;
  function draw(i) {
    var f = D.frames[i];
    if (!f) return;
    var scale = W / D.unitSize, out = [], rows = f.chunks.slice(0, MAXROWS), y = 8;
    rows.forEach(function (c) {
      var name = c[0], head = c[1], map = c[2], pop = c[3], off = 0;
      out.push('<text x="4" y="' + (y + 14) + '" class="l">' + (name === 'reserved' ? 'reserved' : name === '0' ? 'first (0)' : 'chunk ' + name) + '</text>');
      out.push('<text x="4" y="' + (y + BAR + 6) + '" class="s">' + c[4] + ' free, contig ' + c[5] + '</text>');
      for (var k = 0; k < map.length; k++) {
        var e = map[k], size = Math.abs(e), cls = k === 0 && head ? 'h' : e < 0 ? 'a' : 'f';
        out.push('<rect x="' + (LEFT + off * scale).toFixed(2) + '" y="' + y + '" width="' + Math.max(size * scale, 0.5).toFixed(2) + '" height="' + BAR + '" class="' + cls + '"><title>' + (e < 0 ? 'in use' : 'free') + ': offset ' + off + ', ' + size + ' bytes</title></rect>');
        off += size;
      }
      var pw = 4096 * scale;
      for (var p = 0; p < pop.length; p++) if (pop[p] === '1') out.push('<rect x="' + (LEFT + p * pw).toFixed(2) + '" y="' + (y + BAR + 2) + '" width="' + pw.toFixed(2) + '" height="' + STRIP + '" class="p"/>');
      y += BAR + STRIP + GAP;
    });
    if (f.chunks.length > MAXROWS) out.push('<text x="4" y="' + (y + 10) + '" class="s">' + (f.chunks.length - MAXROWS) + ' more chunk(s) not drawn</text>');
    box.innerHTML = '<svg xmlns="http://www.w3.org/2000/svg" width="' + (LEFT + W + 10) + '" height="' + (y + 16) + '" font-family="monospace">' + out.join('') + '</svg>';
    label.textContent = 'frame ' + (i + 1) + ' of ' + D.frames.length + ': ' + f.label + ' (' + f.chunks.length + ' chunk(s))';
    box.setAttribute('data-frame', String(i));
  }
  slider.max = String(D.frames.length - 1);
  slider.value = String(D.frames.length - 1);
  slider.addEventListener('input', function () { draw(+slider.value); });
  document.getElementById('prev').addEventListener('click', function () { slider.value = String(Math.max(0, +slider.value - 1)); draw(+slider.value); });
  document.getElementById('next').addEventListener('click', function () { slider.value = String(Math.min(D.frames.length - 1, +slider.value + 1)); draw(+slider.value); });
  Array.prototype.forEach.call(document.querySelectorAll('button[data-tick]'), function (b) {
    b.addEventListener('click', function () {
      var tick = +b.getAttribute('data-tick'), at = 0;
      for (var i = 0; i < D.frames.length; i++) if (D.frames[i].tick <= tick) at = i;
      slider.value = String(at);
      draw(at);
      document.getElementById('maps-section').scrollIntoView();
    });
  });
  draw(D.frames.length - 1);
})();
`;

/** The page. */
export function htmlReport(p: ReportPage): string {
  const t = p.timeline;
  const v = p.verdict;
  const cpu: NonNullable<ReportPage['cpuTable']> = p.cpuTable ?? cpuCounts(t.events, t.cpus);
  const unitSize = t.layout?.unitSize ?? 65536;
  const counters = countersSvg(t, p.position === 'line' ? 'trace line' : 'scheduler tick');
  const violations = violationsHtml(p);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(p.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${esc(p.title)}</h1>
<section id="verdict" class="${v.ok ? 'ok' : 'bad'}"><b id="verdict-label">${esc(v.label)}</b>${v.seed !== null ? ` &middot; seed <code id="seed">${v.seed}</code>` : ''}
${v.replay ? `<div>replay: <code id="replay">${words(v.replay)}</code></div>` : ''}
${v.notes.map((n) => `<div>${esc(n)}</div>`).join('\n')}</section>
${violations.length ? `<h2>Violations (${t.violations.length})</h2><section id="violations">${violations.join('\n')}</section>` : ''}
<h2>Boot layout</h2>
<section id="layout">${t.layout ? layoutSvg(t.layout) : '<p>no boot layout: the run ended before boot</p>'}</section>
<h2 id="maps-section">Chunk maps over time</h2>
<div class="controls"><button id="prev">&larr;</button><input type="range" id="frame" min="0" max="0" step="1" value="0" aria-label="frame"><button id="next">&rarr;</button></div>
<div id="frame-label"></div>
<p class="legend" style="font-size:12px;color:#555">blue: in use; pale: free; dark: the first chunk's static (and reserved) head; green strip: populated pages. ${t.frames.length} snapshot(s) over the run.</p>
<div id="maps"></div>
${counters ? `<h2>Counters</h2><section id="counters">${counters}</section>` : ''}
${p.coverage ? `<h2>Concurrency coverage</h2><section id="coverage">${coverageSection(p.coverage)}</section>` : ''}
<h2>${esc(cpu.title ?? 'CPUs')}</h2>
${table(cpu.columns, cpu.rows, 'cpus')}
<h2>Boot lines</h2>
<pre id="boot">${esc(t.bootLines.join('\n'))}</pre>
<h2>percpu_stats</h2>
<pre id="stats">${esc(p.stats ?? (t.stats || 'no statistics: the allocator never booted'))}</pre>
<script type="application/json" id="frames">${framesJson(t.frames, unitSize)}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
