/**
 * A real boot log beside 2.6.36 on the same machine: the machine is read off the log
 * (src/trace/dmesg.ts), booted through src/sim/boot.ts, and every percpu line of the log is
 * paired with the line the simulator printed. A difference is explained when it is the
 * machine's (an address, the vmalloc space, the page size), the copy's (a lost trailing
 * space), or a later kernel's (the "percpu:" prefix, hashed pointers, the 32 KiB minimum unit
 * of 2.6.37); the model of 2.6.36's first chunk (src/model) recomputes the numbers under each
 * such rule. Anything else is unexplained.
 */
import { PAGE_SIZE } from '../kernel/constants.ts';
import { type AllocRules, buildAllocInfo, dumpAllocInfo, nodeDistance } from '../model/first-chunk.ts';
import { bootMachine, type MachineSpec } from '../sim/boot.ts';
import { type DmesgKind, type DmesgMachine, type DmesgParse, inferMachine } from '../trace/dmesg.ts';

export type RowStatus = 'same' | 'explained' | 'unexplained' | 'input' | 'not compared';

export interface DmesgRow {
  kind: DmesgKind | 'other';
  /** the line of the log, or null for a line only the simulator printed */
  line: number | null;
  real: string | null;
  simulated: string | null;
  status: RowStatus;
  /** why the two differ, one reason per difference */
  reasons: string[];
}

export interface DmesgComparison {
  machine: DmesgMachine & { memoryMiB: number; vmallocBytes: number | null };
  /** the percpu-sim boot command that prints the simulated lines */
  command: string;
  rows: DmesgRow[];
  /** the log's percpu lines, and its other lines */
  percpuLines: number;
  ignored: number;
  unexplained: number;
}

const MiB = 1 << 20;

const REASON = {
  trailing: 'the copy lost the space printk leaves at the end of the line',
  prefix: 'a later kernel prints mm/percpu.c\'s messages as "percpu: " (pr_fmt); 2.6.36 writes "PERCPU: "',
  setupPrefix: 'this kernel prints x86\'s line without the "setup_percpu: " prefix 2.6.36 gives it',
  hashed: 'the kernel hashes printed pointers (4.15 on), so the address is not shown',
  noPtr: 'a later kernel prints no address on this line',
  address:
    "the address is where boot memory put the first chunk on that machine, not a rule of the allocator; the simulated machine's memory map is its own",
  distance:
    "max_distance and the vmalloc size are the machine's: how far apart its nodes' memory lies and how large its vmalloc space is (the simulated machine's vmalloc space is sized so that its groups lie too far apart as well)",
  setup: 'x86 prints this before the first chunk is built; it gives the CPU and node counts the machine is booted with',
  noHeader:
    'the log has no first-chunk builder line: this architecture builds its first chunk itself and calls pcpu_setup_first_chunk()',
  noDump:
    'the log has no pcpu-alloc: lines: pcpu_dump_alloc_info() prints them at KERN_DEBUG, which this capture did not keep',
  minUnit: '2.6.37 lowered PCPU_MIN_UNIT_SIZE from 64 KiB to 32 KiB, so a later kernel makes smaller units',
  pageSize: (p: number) =>
    `the machine's pages are ${p >> 10} KiB and the simulated machine's 4 KiB: 2.6.36's rule gives these numbers in ${p >> 10} KiB pages`,
};

/** Consecutive CPUs on one node as ranges: "0-17:0,18-35:1". */
export function cpuNodeRanges(map: readonly number[]): string {
  const out: string[] = [];
  for (let a = 0; a < map.length;) {
    let b = a;
    while (b + 1 < map.length && map[b + 1] === map[a]) b++;
    out.push(`${a === b ? a : `${a}-${b}`}:${map[a]}`);
    a = b + 1;
  }
  return out.join(',');
}

/** The map as --cpu-nodes takes it, ranges or a list, whichever is shorter. */
export function cpuNodesText(map: readonly number[]): string {
  const ranges = cpuNodeRanges(map);
  const list = map.join(',');
  return ranges.length <= list.length ? ranges : list;
}

/** Boots 2.6.36 on the log's machine, pairs the lines and explains every difference. */
export function compareDmesg(p: DmesgParse): DmesgComparison {
  const m = inferMachine(p);
  const sizeSum = Math.ceil((m.staticSize + m.reservedSize + Math.max(m.dynSize, 12288)) / PAGE_SIZE) * PAGE_SIZE;
  const unit = Math.max(p.sizes?.u ?? 0, sizeSum, 64 << 10);
  const perNode = Math.max(...Array.from({ length: m.nodes }, (_, n) => m.cpuToNode.filter((x) => x === n).length));
  // room on every node for its group, the page first chunk's pages and boot memory besides
  const wanted = Math.ceil((m.nodes * ((perNode + 8) * unit * 2 + m.atomSize) + m.cpus * unit) / MiB) + 16;
  const memoryMiB = Math.min(4096, Math.max(64, 2 ** Math.ceil(Math.log2(wanted))));
  const fc = m.fc === 'page' ? 'page' : m.fc === 'fallback' ? 'auto' : m.tooFar ? 'embed' : 'auto';
  const spec: MachineSpec = {
    cpus: m.cpus,
    nodes: m.nodes,
    cpuToNode: m.cpuToNode,
    backend: m.backend,
    fc,
    memoryMiB,
    numaGroups: m.nodes > 1 && m.backend === 'vm',
    contents: false,
    sizes: { static_size: m.staticSize, reserved_size: m.reservedSize, dyn_size: m.dynSize, atom_size: m.atomSize },
  };
  let vmallocBytes: number | null = null;
  if (m.tooFar) {
    // the log's groups lie too far apart: a vmalloc space small enough for the simulated ones to as well
    const probe = bootMachine({ ...spec, fc: 'embed' }).pc;
    const maxDistance = Math.max(...probe.pcpu_group_offsets) + probe.pcpu_unit_size;
    const vm = Math.floor((Math.ceil((maxDistance * 4) / 3) - 1) / MiB) * MiB;
    const pageChunk = m.cpus * Math.max(sizeSum, 64 << 10) + MiB;
    if (vm >= pageChunk && vm >= MiB) vmallocBytes = vm;
  }
  const { pc } = bootMachine({ ...spec, ...(vmallocBytes ? { vmallocBytes } : {}) });
  const sim = pc.dmesg.map((text) => ({ text, kind: kindOf(text) }));

  const alts = alternatives(m, sim.find((l) => l.kind === 'header')?.text ?? null);
  const rows: DmesgRow[] = [];
  const realOf = (k: DmesgKind) => p.lines.find((l) => l.kind === k);
  for (const k of ['setup', 'max-distance', 'fallback', 'header', 'wasting', 'sizes'] as const) {
    const r = realOf(k);
    const s = sim.find((l) => l.kind === k)?.text ?? null;
    if (!r && !s) continue;
    if (r && s) {
      rows.push({ kind: k, line: r.line, real: r.text, simulated: s, ...explain(k, r.text, s, alts) });
      continue;
    }
    const one = (status: RowStatus, reasons: string[]): void => {
      rows.push({ kind: k, line: r?.line ?? null, real: r?.text ?? null, simulated: s, status, reasons });
    };
    const dump = p.lines.some((l) => l.kind === 'sizes' || l.kind === 'groups');
    if (k === 'setup') one('input', [REASON.setup]);
    else if (!r && k === 'header' && dump) one('explained', [REASON.noHeader]);
    else if (!r && k === 'sizes' && !dump) one('explained', [REASON.noDump]);
    else
      one('unexplained', [
        r ? '2.6.36 on the simulated machine prints no such line' : 'the log has no such line where 2.6.36 prints one',
      ]);
  }
  const realG = p.lines.filter((l) => l.kind === 'groups');
  const simG = sim.filter((l) => l.kind === 'groups').map((l) => l.text);
  const block = groupBlock(
    realG.map((l) => l.text),
    simG,
    alts,
  );
  for (let i = 0; i < Math.max(realG.length, simG.length); i++)
    rows.push({
      kind: 'groups',
      line: realG[i]?.line ?? null,
      real: realG[i]?.text ?? null,
      simulated: simG[i] ?? null,
      ...block(i),
    });
  for (const o of p.otherPercpu)
    rows.push({
      kind: 'other',
      line: o.line,
      real: o.text,
      simulated: null,
      status: 'not compared',
      reasons: ['a percpu line of another kind: not one of the first chunk'],
    });
  rows.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));

  const flags = [
    m.nodes > 1 ? `--cpu-nodes ${cpuNodesText(m.cpuToNode)}` : `--cpus ${m.cpus}`,
    `--static ${m.staticSize}`,
    `--reserved ${m.reservedSize}`,
    `--dyn ${m.dynSize}`,
    `--atom ${m.atomSize}`,
    ...(m.backend === 'km' ? ['--backend km'] : []),
    ...(fc !== 'auto' ? [`--fc ${fc}`] : []),
    `--memory ${memoryMiB}`,
    ...(vmallocBytes ? [`--vmalloc ${vmallocBytes / MiB}`] : []),
  ];
  return {
    machine: { ...m, memoryMiB, vmallocBytes },
    command: `percpu-sim boot ${flags.join(' ')}`,
    rows,
    percpuLines: p.lines.length + p.otherPercpu.length,
    ignored: p.ignored,
    unexplained: rows.filter((r) => r.status === 'unexplained').length,
  };
}

function kindOf(text: string): DmesgKind {
  if (text.includes('max_distance=')) return 'max-distance';
  if (text.includes('falling back')) return 'fallback';
  if (/^PERCPU: .*pages\/cpu/.test(text)) return 'header';
  if (text.includes('wasting')) return 'wasting';
  if (/^pcpu-alloc: s\d/.test(text)) return 'sizes';
  return 'groups';
}

interface Alternative {
  reasons: string[];
  header: string | null;
  sizes: string;
  groups: string[];
}

/**
 * The lines 2.6.36 would print under each rule a machine or a later kernel changes: the log's
 * page size, the 32 KiB minimum unit, and both.
 */
function alternatives(m: DmesgMachine, header: string | null): Alternative[] {
  const sets: { reasons: string[]; rules: AllocRules }[] = [];
  const page = m.pageSize;
  if (page !== PAGE_SIZE) sets.push({ reasons: [REASON.pageSize(page)], rules: { pageSize: page } });
  sets.push({ reasons: [REASON.minUnit], rules: { minUnitSize: 32 << 10 } });
  if (page !== PAGE_SIZE)
    sets.push({ reasons: [REASON.pageSize(page), REASON.minUnit], rules: { pageSize: page, minUnitSize: 32 << 10 } });
  const embedded = header === null || header.includes('Embedded');
  return sets.map(({ reasons, rules }) => {
    const p = rules.pageSize ?? PAGE_SIZE;
    const ai = embedded
      ? buildAllocInfo(
          m.cpus,
          m.staticSize,
          m.reservedSize,
          m.dynSize,
          Math.max(m.atomSize, p),
          m.nodes > 1 && m.backend === 'vm' ? nodeDistance(m.cpuToNode) : null,
          rules,
        )
      : buildAllocInfo(m.cpus, m.staticSize, m.reservedSize, 0, p, null, rules);
    const sum = ai.staticSize + ai.reservedSize + ai.dynSize;
    const h =
      header === null
        ? null
        : embedded
          ? header
              .replace(/Embedded \d+ pages/, `Embedded ${sum / p} pages`)
              .replace(/ d\d+ u\d+$/, ` d${ai.dynSize} u${ai.unitSize}`)
          : header
              .replace(/^PERCPU: \d+ \d+K/, `PERCPU: ${ai.unitSize / p} ${p >> 10}K`)
              .replace(/ d\d+$/, ` d${ai.dynSize}`);
    const [sizes, ...groups] = dumpAllocInfo(ai, m.cpus);
    return { reasons, header: h, sizes: sizes!, groups };
  });
}

/** The real line made to read as the simulated one where the difference is not a rule's, and why. */
function cosmetic(kind: DmesgKind, real: string, sim: string): { r: string; s: string; reasons: string[] } {
  const reasons: string[] = [];
  let r = real.trimEnd();
  const s = sim.trimEnd();
  if (r === real && s !== sim && real !== sim) reasons.push(REASON.trailing);
  if (r.startsWith('percpu: ') && s.startsWith('PERCPU: ')) {
    r = `PERCPU: ${r.slice(8)}`;
    reasons.push(REASON.prefix);
  }
  if (s.startsWith('setup_percpu: ') && !r.startsWith('setup_percpu: ')) {
    r = `setup_percpu: ${r.replace(/^(?:PERCPU|percpu): /, '')}`;
    reasons.push(REASON.setupPrefix);
  }
  const sp = / @(\S+) /.exec(s)?.[1];
  const rp = / @(\S+) /.exec(r)?.[1];
  if (sp !== undefined && kind === 'header') {
    if (rp === undefined) {
      r = r.replace(' pages/cpu s', ` pages/cpu @${sp} s`);
      reasons.push(REASON.noPtr);
    } else if (rp !== sp) {
      r = r.replace(` @${rp} `, ` @${sp} `);
      reasons.push(rp === '(____ptrval____)' ? REASON.hashed : REASON.address);
    }
  }
  if (kind === 'max-distance' && r !== s) {
    r = s;
    reasons.push(REASON.distance);
  }
  if (kind === 'fallback') {
    const name = /(\w+) allocator failed/.exec(r)?.[1];
    const want = /(\w+) allocator failed/.exec(s)?.[1];
    if (name && want && name !== want) {
      r = r.replace(`${name} allocator`, `${want} allocator`);
      reasons.push(`the kernel was booted with percpu_alloc=${name}`);
    }
  }
  return { r, s, reasons };
}

function explain(
  kind: DmesgKind,
  real: string,
  sim: string,
  alts: Alternative[],
): { status: RowStatus; reasons: string[] } {
  const c = cosmetic(kind, real, sim);
  if (c.r === c.s) return { status: c.reasons.length ? 'explained' : 'same', reasons: c.reasons };
  for (const a of alts) {
    const line = kind === 'header' ? a.header : kind === 'sizes' ? a.sizes : null;
    if (line === null) continue;
    const d = cosmetic(kind, real, line);
    if (d.r === d.s) return { status: 'explained', reasons: [...d.reasons, ...a.reasons] };
  }
  return {
    status: 'unexplained',
    reasons: [...c.reasons, 'no rule explains it: 2.6.36 on the same machine prints the simulated line'],
  };
}

/** The group lines as one block: the same, explained as a whole by one rule, or line by line. */
function groupBlock(
  real: string[],
  sim: string[],
  alts: Alternative[],
): (i: number) => { status: RowStatus; reasons: string[] } {
  const trim = (l: string[]) => l.map((x) => x.trimEnd());
  const lost = real.some((l, i) => l === l.trimEnd() && sim[i] !== undefined && sim[i] !== sim[i]!.trimEnd());
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (same(trim(real), trim(sim))) {
    return (i) => {
      const l = real[i]!;
      return l === sim[i] ? { status: 'same', reasons: [] } : { status: 'explained', reasons: [REASON.trailing] };
    };
  }
  if (real.length) {
    const alt = alts.find((a) => same(trim(real), trim(a.groups)));
    if (alt) return () => ({ status: 'explained', reasons: [...(lost ? [REASON.trailing] : []), ...alt.reasons] });
  } else if (sim.length) return () => ({ status: 'explained', reasons: [REASON.noDump] });
  return (i) =>
    real[i] !== undefined && sim[i] !== undefined && real[i]!.trimEnd() === sim[i]!.trimEnd()
      ? { status: real[i] === sim[i] ? 'same' : 'explained', reasons: real[i] === sim[i] ? [] : [REASON.trailing] }
      : {
          status: 'unexplained',
          reasons: ['no rule explains it: 2.6.36 groups and places the units of the same machine as simulated'],
        };
}
