/**
 * Replay traces of other shapes than bench/trace.ts's, for the replay benchmark: each
 * stresses another part of the allocator (the walk over many chunks, big areas and their
 * page spans, the alignment padding, the reserved chunk, long-lived fragmentation). All use
 * the replay format (docs/replay-format.md) and are a pure function of their seed.
 */
import { Prng } from '../src/util/prng.ts';

export interface Shape {
  name: string;
  /** what the shape stresses */
  what: string;
  make(ops: number, seed: number): string;
}

interface Mix {
  /** a request's size */
  size(rng: Prng): number;
  /** its alignment */
  align(rng: Prng): number;
  /** the chance an allocation is reserved */
  reserved: number;
  /** the chance an operation frees, by progress through the trace (0..1) */
  freeRatio(progress: number): number;
  /** which live area a free takes: any, one of the 16 oldest, one of the 16 youngest, or the youngest */
  pick: 'any' | 'old' | 'young' | 'last';
  /** allocations made before slab comes online */
  early: number;
  /** the boot line (default BOOT: 4 CPUs, one node) */
  boot?: string;
  /** how the lines are written (default: compact, ids a0, a1, ...) */
  style?: Style;
}

/** How another writer might print a trace: the format allows both, and the replay must not care. */
interface Style {
  /** separators as Python's json.dumps prints them (", " and ": "), "reserved" always given */
  spaced?: boolean;
  /** the id of the nth allocation */
  id?: (n: number) => string;
}

/** An operation's line, written in `style`; `n` numbers the allocation it names. */
function line(
  style: Style | undefined,
  o: { op: string; n: number; size?: number; align?: number; reserved?: boolean },
): string {
  const id = style?.id ? style.id(o.n) : `a${o.n}`;
  if (!style?.spaced) {
    if (o.op === 'free') return `{"op":"free","id":"${id}"}`;
    return `{"op":"alloc","id":"${id}","size":${o.size},"align":${o.align}${o.reserved ? ',"reserved":true' : ''}}`;
  }
  const fields: [string, unknown][] = [
    ['op', o.op],
    ['id', id],
  ];
  if (o.op === 'alloc') fields.push(['size', o.size], ['align', o.align], ['reserved', o.reserved === true]);
  return `{${fields.map(([k, v]) => `"${k}": ${JSON.stringify(v)}`).join(', ')}}`;
}

const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';

function generate(ops: number, seed: number, mix: Mix): string {
  const rng = new Prng(seed);
  const out: string[] = [mix.boot ?? BOOT];
  const live: number[] = [];
  let next = 0;
  let slab = mix.early === 0;
  if (slab) out.push('{"op":"slab_online"}', '{"op":"init_late"}');
  for (let i = 0; i < ops; i++) {
    if (!slab && next >= mix.early) {
      out.push('{"op":"slab_online"}', '{"op":"init_late"}');
      slab = true;
    }
    if (live.length && rng.chance(mix.freeRatio(i / ops))) {
      const k =
        mix.pick === 'any'
          ? rng.int(0, live.length - 1)
          : mix.pick === 'old'
            ? rng.int(0, Math.min(live.length - 1, 15))
            : mix.pick === 'last'
              ? live.length - 1
              : rng.int(Math.max(0, live.length - 16), live.length - 1);
      const id = live[k]!;
      if (mix.pick === 'any') {
        live[k] = live[live.length - 1]!;
        live.pop();
      } else live.splice(k, 1);
      out.push(line(mix.style, { op: 'free', n: id }));
    } else {
      const id = next++;
      live.push(id);
      const reserved = rng.chance(mix.reserved);
      // drawn in this order whatever the style: the same seed makes the same trace
      const size = mix.size(rng);
      const align = mix.align(rng);
      out.push(line(mix.style, { op: 'alloc', n: id, size, align, reserved }));
    }
  }
  return out.join('\n') + '\n';
}

/** A shape whose trace generate() writes from one mix. */
const mixShape = (name: string, what: string, mix: Mix): Shape => ({
  name,
  what,
  make: (ops, seed) => generate(ops, seed, mix),
});

/** 1..max, log-uniform: as many 1-2 byte requests as 16-32 KiB ones. */
const logUniform = (rng: Prng, max: number): number =>
  Math.min(max, Math.max(1, Math.floor(2 ** (rng.float() * Math.log2(max + 1)))));
const drift =
  (lo: number, hi: number) =>
  (p: number): number =>
    lo + (hi - lo) * (p < 0.5 ? 2 * p : 2 - 2 * p);

/** The independent generator's mix: what any trace is measured against first. */
const MIXED: Mix = {
  size: (r) => logUniform(r, 32768),
  align: (r) => 1 << r.int(0, 12),
  reserved: 0.05,
  freeRatio: drift(0.3, 0.55),
  pick: 'any',
  early: 40,
};

export const SHAPES: Shape[] = [
  mixShape(
    'mixed',
    'sizes 1 B..32 KiB log-uniform, alignments up to 4096, 5% reserved, 30-55% frees, slab early',
    MIXED,
  ),
  mixShape(
    'spaced',
    "mixed's trace as Python's json.dumps prints it, ids named, not numbered: the replay reads every writer's JSON",
    {
      ...MIXED,
      style: { spaced: true, id: (n) => `obj-${((n * 2654435761) >>> 0).toString(16)}-${n.toString(36)}` },
    },
  ),
  mixShape('many-chunks', 'mid-size areas that fill hundreds of chunks: the walk crosses long slot lists', {
    size: (r) => r.int(2048, 12288),
    align: (r) => 1 << r.int(2, 6),
    reserved: 0,
    freeRatio: drift(0.3, 0.45),
    pick: 'any',
    early: 0,
  }),
  mixShape('large', 'areas of 8-64 KiB: a chunk holds a few, populate and reclaim often', {
    size: (r) => r.int(8192, 65536),
    align: (r) => 1 << r.int(3, 12),
    reserved: 0,
    freeRatio: () => 0.5,
    pick: 'any',
    early: 0,
  }),
  mixShape('align-heavy', 'small areas at alignments of 256..4096: padding heads split off and given away', {
    size: (r) => r.int(1, 200),
    align: (r) => 1 << r.int(8, 12),
    reserved: 0,
    freeRatio: drift(0.35, 0.5),
    pick: 'any',
    early: 0,
  }),
  mixShape('reserved-heavy', 'a third of the allocations from the reserved chunk, which fills and fails', {
    size: (r) => r.int(4, 512),
    align: (r) => 1 << r.int(2, 5),
    reserved: 0.33,
    freeRatio: drift(0.4, 0.5),
    pick: 'any',
    early: 20,
  }),
  mixShape(
    'numa',
    '8 CPUs on 2 nodes (sparse NUMA groups, a vm area per group): sizes 1 B..16 KiB, alignments up to 1024',
    {
      size: (r) => logUniform(r, 16384),
      align: (r) => 1 << r.int(0, 10),
      reserved: 0.03,
      freeRatio: drift(0.35, 0.5),
      pick: 'any',
      early: 10,
      boot: '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480,"cpus":8,"nodes":2}',
    },
  ),
  mixShape(
    'phases',
    'bursts of allocations, then bursts that free nine in ten: the chunks fill, empty and are reclaimed',
    {
      size: (r) => r.int(8, 2048),
      align: (r) => 1 << r.int(2, 6),
      reserved: 0,
      freeRatio: (p) => (Math.floor(p * 25) % 2 ? 0.9 : 0),
      pick: 'any',
      early: 0,
    },
  ),
  mixShape('lifo', 'frees in stack order: little placement work per operation, so the cost of each operation shows', {
    size: (r) => r.int(1, 1024),
    align: () => 8,
    reserved: 0,
    freeRatio: () => 0.48,
    pick: 'last',
    early: 0,
  }),
  mixShape('cpus64', '64 CPUs on 4 nodes: every populated page is 64 pages of the machine', {
    size: (r) => logUniform(r, 4096),
    align: (r) => 1 << r.int(0, 6),
    reserved: 0.02,
    freeRatio: drift(0.4, 0.5),
    pick: 'any',
    early: 0,
    boot: '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480,"cpus":64,"nodes":4}',
  }),
  mixShape('km', 'the kernel-memory backend: contiguous chunks, populated whole when made', {
    size: (r) => logUniform(r, 8192),
    align: (r) => 1 << r.int(0, 8),
    reserved: 0.03,
    freeRatio: drift(0.4, 0.5),
    pick: 'any',
    early: 0,
    boot: '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480,"backend":"km"}',
  }),
  mixShape('fragmented', 'long-lived small areas that stay while young ones come and go: long maps, holes everywhere', {
    size: (r) => (r.chance(0.9) ? r.int(4, 64) : r.int(65, 1024)),
    align: (r) => 1 << r.int(0, 4),
    reserved: 0,
    freeRatio: drift(0.35, 0.49),
    pick: 'young',
    early: 0,
  }),
];

/**
 * A running kernel as modules see it: early boot allocations, then per-CPU counters and
 * statistics of the common struct sizes (naturally aligned up to 64), and now and then a
 * module that loads (a burst of reserved areas for its static percpu, a few dynamic ones) and
 * later unloads (all of its areas at once). Modules outlive most counters; the reserved chunk
 * fills and fails when too many are loaded.
 */
function modules(ops: number, seed: number): string {
  const rng = new Prng(seed);
  const out: string[] = [BOOT];
  const counters: number[] = [];
  const loaded: number[][] = [];
  const CLASSES = [4, 8, 8, 16, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024, 4096];
  let next = 0;
  let n = 0;
  const alloc = (size: number, align: number, reserved: boolean, into: number[]): void => {
    const id = next++;
    into.push(id);
    out.push(`{"op":"alloc","id":"m${id}","size":${size},"align":${align}${reserved ? ',"reserved":true' : ''}}`);
    n++;
  };
  for (let i = 0; i < 60; i++) alloc(rng.pick(CLASSES), 8, false, counters);
  out.push('{"op":"slab_online"}', '{"op":"init_late"}');
  while (n < ops) {
    const roll = rng.float();
    if (roll < 0.004) {
      // a module loads: its static percpu section in the reserved chunk, then its own counters
      const areas: number[] = [];
      for (let k = rng.int(1, 12); k > 0; k--) alloc(rng.int(4, 600), 1 << rng.int(2, 6), true, areas);
      for (let k = rng.int(0, 20); k > 0; k--) alloc(rng.pick(CLASSES), 1 << rng.int(2, 6), false, areas);
      loaded.push(areas);
    } else if (roll < 0.0075 && loaded.length) {
      // a module unloads: everything it had goes
      const k = rng.int(0, loaded.length - 1);
      for (const id of loaded[k]!) {
        out.push(`{"op":"free","id":"m${id}"}`);
        n++;
      }
      loaded[k] = loaded[loaded.length - 1]!;
      loaded.pop();
    } else if (counters.length && rng.chance(counters.length > 20000 ? 0.55 : 0.42)) {
      const k = rng.int(0, counters.length - 1);
      out.push(`{"op":"free","id":"m${counters[k]}"}`);
      counters[k] = counters[counters.length - 1]!;
      counters.pop();
      n++;
    } else {
      const size = rng.pick(CLASSES);
      alloc(size, Math.min(64, size & -size), false, counters);
    }
  }
  return out.join('\n') + '\n';
}

/** A shape the optimisation was not tuned against: it checks the others are not the only ones served. */
export const UNSEEN: Shape = {
  name: 'modules',
  what: 'struct-size counters, and modules that load reserved bursts and unload them whole',
  make: modules,
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const shape = [...SHAPES, UNSEEN].find((s) => s.name === process.argv[2]);
  if (!shape) {
    process.stderr.write(
      `usage: shapes.ts NAME [OPS] [SEED]; NAME is one of ${[...SHAPES, UNSEEN].map((s) => s.name).join(', ')}\n`,
    );
    process.exit(2);
  }
  process.stdout.write(shape.make(Number(process.argv[3] ?? 1e6), Number(process.argv[4] ?? 1)));
}
