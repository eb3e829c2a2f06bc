/**
 * A kernel boot log's percpu lines, and the machine they describe. Reads what dmesg, a serial
 * console or syslog keeps: with or without timestamps, log levels and syslog prefixes; the
 * "PERCPU:" spelling of 2.6.3x and the "percpu:" of later kernels; raw, hashed or absent
 * pointers; the setup_percpu: line of x86; the pcpu-alloc: dump in every width. Lines that are
 * not percpu's are counted and otherwise ignored.
 */

export type DmesgKind = 'setup' | 'max-distance' | 'fallback' | 'header' | 'wasting' | 'sizes' | 'groups';

export interface DmesgLine {
  /** 1-based line number in the file */
  line: number;
  /** the message, without timestamp, level or syslog prefix */
  text: string;
  kind: DmesgKind;
}

export interface DmesgParse {
  lines: DmesgLine[];
  /** lines that are not percpu's */
  ignored: number;
  /** percpu's lines of other kinds (allocation failures, other builders): shown, not compared */
  otherPercpu: { line: number; text: string }[];
  setup?: { nrCpus: number; nrCpuIds: number; nrNodeIds: number };
  header?: {
    fc: 'embed' | 'page';
    /** pages per CPU as printed, and their size (the page first chunk names it; embedding implies it) */
    pages: number;
    pageSize: number;
    /** the address as printed: hex digits, "(____ptrval____)", or null when the line has none */
    ptr: string | null;
    s: number;
    r: number;
    d: number;
    u: number | null;
  };
  sizes?: { s: number; r: number; d: number; u: number; allocs: number; atom: number };
  /** every unit of the dump in order: its group and CPU (null for an unused unit) */
  units: { group: number; cpu: number | null }[];
  maxDistance?: { distance: number; vmalloc: number };
  fallback?: { allocator: string; rc: number };
}

const PREFIXES = [
  // syslog / journalctl: "Jan  1 00:00:00 host kernel: "
  /^[A-Z][a-z]{2} [ \d]\d [\d:]{8} \S+ kernel: ?/,
  // dmesg -x: "kern  :info  : "
  /^[a-z]+ *:[a-z]+ *: /,
  // a printk level "<6>"
  /^<\d>/,
  // a timestamp "[    0.000000] "
  /^\[ *\d+\.\d+\] ?/,
];

/** The message of a log line: syslog prefix, level and timestamp taken off, in any order. */
export function messageOf(raw: string): string {
  let s = raw.replace(/\r$/, '');
  for (let again = true; again;) {
    again = false;
    for (const p of PREFIXES) {
      const t = s.replace(p, '');
      if (t !== s) [s, again] = [t, true];
    }
  }
  return s;
}

const P = '(?:PERCPU|percpu): ';
const PTR = '(?: @(\\(____ptrval____\\)|[0-9a-fA-F]+))?';
const SRD = ' s(\\d+) r(\\d+) d(\\d+)';
const RULES: [DmesgKind, RegExp][] = [
  ['setup', /^(?:setup_percpu: )?NR_CPUS:(\d+) nr_cpumask_bits:\d+ nr_cpu_ids:(\d+) nr_node_ids:(\d+)\s*$/],
  ['max-distance', new RegExp(`^${P}max_distance=0x([0-9a-f]+) too large for vmalloc space(?: 0x([0-9a-f]+))?\\s*$`)],
  [
    'fallback',
    /^(?:setup_percpu: |PERCPU: |percpu: )?(\w+) allocator failed \((-?\d+)\), falling back to page size\s*$/,
  ],
  ['header', new RegExp(`^${P}Embedded (\\d+) pages/cpu${PTR}${SRD} u(\\d+)\\s*$`)],
  ['header', new RegExp(`^${P}(\\d+) (\\d+)K pages/cpu${PTR}${SRD}\\s*$`)],
  ['wasting', new RegExp(`^${P}wasting \\d+ pages per chunk\\s*$`)],
  ['sizes', /^pcpu-alloc: s(\d+) r(\d+) d(\d+) u(\d+) alloc=(\d+)\*(\d+)\s*$/],
  ['groups', /^pcpu-alloc:((?: +\[\d+\](?: +(?:\d+|-+))+)+) *$/],
];

export class DmesgError extends Error {}

/** Reads a boot log: its percpu lines and what they say. */
export function parseDmesg(text: string): DmesgParse {
  const res: DmesgParse = { lines: [], ignored: 0, otherPercpu: [], units: [] };
  const raw = text.split('\n');
  if (raw[raw.length - 1] === '') raw.pop();
  raw.forEach((r, i) => {
    const text = messageOf(r);
    const rule = RULES.find(([, re]) => re.test(text));
    if (!rule) {
      if (/^(?:PERCPU|percpu|pcpu-alloc):/.test(text)) res.otherPercpu.push({ line: i + 1, text });
      else res.ignored++;
      return;
    }
    const [kind, re] = rule;
    const m = re.exec(text)!;
    const n = (k: number): number => Number(m[k]);
    res.lines.push({ line: i + 1, text, kind });
    switch (kind) {
      case 'setup':
        res.setup ??= { nrCpus: n(1), nrCpuIds: n(2), nrNodeIds: n(3) };
        break;
      case 'max-distance':
        res.maxDistance ??= { distance: parseInt(m[1]!, 16), vmalloc: m[2] ? parseInt(m[2], 16) : 0 };
        break;
      case 'fallback':
        res.fallback ??= { allocator: m[1]!, rc: n(2) };
        break;
      case 'header':
        if (text.includes('Embedded'))
          res.header = {
            fc: 'embed',
            pages: n(1),
            pageSize: (n(3) + n(4) + n(5)) / n(1),
            ptr: m[2] ?? null,
            s: n(3),
            r: n(4),
            d: n(5),
            u: n(6),
          };
        else
          res.header = {
            fc: 'page',
            pages: n(1),
            pageSize: n(2) << 10,
            ptr: m[3] ?? null,
            s: n(4),
            r: n(5),
            d: n(6),
            u: null,
          };
        break;
      case 'sizes':
        res.sizes ??= { s: n(1), r: n(2), d: n(3), u: n(4), allocs: n(5), atom: n(6) };
        break;
      case 'groups':
        for (const g of m[1]!.matchAll(/\[(\d+)\]((?: +(?:\d+|-+))+)/g))
          for (const t of g[2]!.trim().split(/ +/))
            res.units.push({ group: Number(g[1]), cpu: /^-+$/.test(t) ? null : Number(t) });
        break;
    }
  });
  return res;
}

/** The machine a log describes, as percpu-sim boots it. */
export interface DmesgMachine {
  cpus: number;
  nodes: number;
  /** the node of every CPU: its group in the dump (CPUs in blocks when the dump shows one group) */
  cpuToNode: number[];
  /** where the map came from */
  mapFrom: 'groups' | 'blocks';
  staticSize: number;
  reservedSize: number;
  dynSize: number;
  atomSize: number;
  /** the page size of the log's machine */
  pageSize: number;
  /** what the log's kernel built: embedding, pages, or embedding that fell back to pages */
  fc: 'embed' | 'page' | 'fallback';
  /** the log warns that the groups lie too far apart for the vmalloc space */
  tooFar: boolean;
  backend: 'vm' | 'km';
}

/** Infers the machine of a parsed log; throws DmesgError when the log does not say enough. */
export function inferMachine(p: DmesgParse): DmesgMachine {
  const sizes = p.sizes ?? p.header;
  if (!sizes)
    throw new DmesgError('the log has percpu lines but neither the first chunk line nor the pcpu-alloc sizes');
  const used = p.units.filter((u) => u.cpu !== null) as { group: number; cpu: number }[];
  const fromDump = used.length ? Math.max(...used.map((u) => u.cpu)) + 1 : 0;
  const cpus = fromDump || p.setup?.nrCpuIds || 0;
  if (!cpus) throw new DmesgError('the log names no CPUs: it has neither the pcpu-alloc group lines nor nr_cpu_ids');
  const groups = used.length ? Math.max(...used.map((u) => u.group)) + 1 : 1;
  const fellBack = p.fallback !== undefined || (p.maxDistance !== undefined && p.header?.fc === 'page');
  let cpuToNode: number[];
  let nodes: number;
  let mapFrom: DmesgMachine['mapFrom'];
  if (groups > 1 || (!fellBack && used.length)) {
    cpuToNode = Array.from({ length: cpus }, () => 0);
    for (const u of used) cpuToNode[u.cpu] = u.group;
    nodes = groups;
    mapFrom = 'groups';
  } else {
    // one group in the dump (or no dump): where each CPU sits is not shown, only how many nodes
    nodes = Math.min(Math.max(p.setup?.nrNodeIds ?? 1, fellBack ? 2 : 1), cpus, 16);
    cpuToNode = Array.from({ length: cpus }, (_, c) => Math.floor((c * nodes) / cpus));
    mapFrom = 'blocks';
  }
  const page = p.header?.pageSize ?? 4096;
  const fc = fellBack ? 'fallback' : (p.header?.fc ?? 'embed');
  return {
    cpus,
    nodes,
    cpuToNode,
    mapFrom,
    staticSize: sizes.s,
    reservedSize: sizes.r,
    dynSize: sizes.d,
    // the page first chunk's dump shows the page as its atom; the embedding it fell back from is not shown
    atomSize: fc === 'embed' && p.sizes ? p.sizes.atom : 4096,
    pageSize: Number.isInteger(page) && page > 0 ? page : 4096,
    fc,
    tooFar: p.maxDistance !== undefined,
    backend: p.lines.some((l) => l.kind === 'wasting') ? 'km' : 'vm',
  };
}
