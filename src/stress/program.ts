/**
 * What each CPU does in a stress run, from its own seeded PRNG, through every part of the
 * per-CPU API with checking on:
 *
 *  - allocate areas of random size and alignment (some from the reserved chunk) and stamp
 *    them: the CPU's own copy as bytes, or every CPU's copy through per_cpu_ptr (declared
 *    remote writes), or its own copy word by word at every width, plain and atomic;
 *  - re-stamp, check (every copy it wrote, at the widths it wrote them) and free at random;
 *  - count with this_cpu_add() on the fast path, and undo the count;
 *  - publish a shared area on the stress board (below): every other CPU checks its own copy
 *    and a third CPU's copy of it, then acknowledges; only then is it freed;
 *  - reload: two areas of half a chunk each, touched, freed (which can empty chunks and have
 *    reclaim destroy one) and allocated again, so that a chunk is made anew where an
 *    old one was and the CPU touches the same addresses through fresh page tables: a
 *    translation cached across that (a stale TLB entry) reads or writes the old frame.
 *
 * The boot CPU also runs an early phase before slab is online, until the early area map runs
 * out; those areas stay live into the main phase. A byte that does not read back as written
 * is data corruption.
 *
 * The stress board lives in three static percpu variables (stress_board, stress_acks,
 * stress_done): CPU c publishes (size << 56 | generation << 48 | pointer) in its own copy of
 * stress_board with an atomic 64-bit store; a reader acknowledges with an atomic add to
 * CPU c's copy of stress_acks (a declared remote write). A CPU that has finished its
 * operations keeps serving the board until every CPU is done and every board is clear.
 */
import type { PerCpu } from '../api/per-cpu.ts';
import type { SizeMix, StressArgs } from '../files/config.ts';

export type { SizeMix, StressArgs } from '../files/config.ts';
export { DEFAULT_STRESS_ARGS } from '../files/stress-args.ts';

/** The static percpu variables the stress board needs in the kernel image. */
export const STRESS_VARS = [
  { name: 'stress_board', size: 8, init: 0 },
  { name: 'stress_acks', size: 4, init: 0 },
  { name: 'stress_done', size: 4, init: 0 },
] as const;

export interface StressCpuResult {
  cpu: number;
  allocs: number;
  failed: number;
  frees: number;
  checks: number;
  /** other CPUs' shared areas this CPU checked and acknowledged */
  acks: number;
  /** areas it took over from the early phase (and freed with its own) */
  inherited: number;
}

/** How an area was stamped, which says how it is checked. */
type Stamp = 'own' | 'all' | 'words';

export interface Area {
  ptr: number;
  size: number;
  stamp: number;
  how: Stamp;
}

/** Data corruption: a copy does not hold what was written to it. */
export class CorruptionError extends Error {
  override readonly name = 'CorruptionError';
  readonly code = 'CORRUPTION';
}

/** The run was stopped (a violation elsewhere): give up quietly. */
export class StopError extends Error {
  override readonly name = 'StopError';
}

/** The byte `i` of the copy of CPU `copy`, stamped by `writer` with `stamp`. */
const stampByte = (writer: number, copy: number, stamp: number, i: number): number =>
  ((writer + 1) * 31 + (copy + 1) * 101 + stamp * 7 + i * 13) & 0xff || 0x5a;

function pattern(writer: number, copy: number, stamp: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = stampByte(writer, copy, stamp, i);
  return b;
}

function pickSize(cpu: PerCpu, mix: SizeMix): number {
  const r = cpu.prng.float();
  if (mix === 'small') return cpu.prng.int(1, 64);
  if (mix === 'large') return cpu.prng.int(1024, 32768);
  return r < 0.8 ? cpu.prng.int(1, 256) : r < 0.98 ? cpu.prng.int(257, 4096) : cpu.prng.int(4097, 16384);
}

/** The widths an aligned area is written and read in, one unit after another. */
function* words(size: number): Generator<[number, 1 | 2 | 4 | 8]> {
  const cycle = [8, 4, 2, 1] as const;
  let i = 0;
  for (let k = 0; i < size; k++) {
    let w: 1 | 2 | 4 | 8 = cycle[k % 4]!;
    while (w > 1 && (i % w !== 0 || i + w > size)) w = (w / 2) as 1 | 2 | 4;
    yield [i, w];
    i += w;
  }
}

const le = (b: Uint8Array, i: number, w: number): number => {
  let v = 0;
  for (let k = w - 1; k >= 0; k--) v = v * 256 + b[i + k]!;
  return w === 4 ? v | 0 : v;
};
const le64 = (b: Uint8Array, i: number): bigint =>
  BigInt.asIntN(64, (BigInt(le(b, i + 4, 4) >>> 0) << 32n) | BigInt(le(b, i, 4) >>> 0));

function stampArea(cpu: PerCpu, a: Area): void {
  const me = cpu.cpu;
  if (a.how === 'own') cpu.writeBytes(cpu.this_cpu_ptr(a.ptr), pattern(me, me, a.stamp, a.size));
  else if (a.how === 'all')
    for (let x = 0; x < cpu.nr_cpus; x++)
      cpu.writeBytes(cpu.per_cpu_ptr(a.ptr, x), pattern(me, x, a.stamp, a.size), x === me ? false : x);
  else {
    const b = pattern(me, me, a.stamp, a.size);
    const va = cpu.this_cpu_ptr(a.ptr);
    let n = 0;
    for (const [i, w] of words(a.size)) {
      const atomic = (n++ + a.stamp) % 2 === 1;
      if (w === 8) atomic ? cpu.atomic_write64(va + i, le64(b, i)) : cpu.this_cpu_write64(a.ptr + i, le64(b, i));
      else if (atomic) cpu.atomic_write(va + i, le(b, i, w), w);
      else cpu.this_cpu_write(a.ptr + i, le(b, i, w), w);
    }
  }
}

function corrupt(cpu: PerCpu, a: Area, copy: number, what: string): never {
  throw new CorruptionError(
    `cpu ${cpu.cpu}: ${what} of cpu ${copy}'s copy of area ${a.ptr.toString(16)} (+${a.size}) does not hold what cpu ${cpu.cpu} wrote`,
  );
}

function checkBytes(cpu: PerCpu, a: Area, writer: number, copy: number): void {
  const va = copy === cpu.cpu ? cpu.this_cpu_ptr(a.ptr) : cpu.per_cpu_ptr(a.ptr, copy);
  const got = cpu.bytes(va, a.size, copy);
  const want = pattern(writer, copy, a.stamp, a.size);
  for (let i = 0; i < a.size; i++)
    if (got[i] !== want[i]) corrupt(cpu, a, copy, `byte ${i} (${got[i]}, not ${want[i]})`);
}

function checkArea(cpu: PerCpu, a: Area): void {
  const me = cpu.cpu;
  if (a.how === 'all') for (let x = 0; x < cpu.nr_cpus; x++) checkBytes(cpu, a, me, x);
  else checkBytes(cpu, a, me, me);
  if (a.how !== 'words') return;
  // read it back at the widths it was written in
  const b = pattern(me, me, a.stamp, a.size);
  const va = cpu.this_cpu_ptr(a.ptr);
  let n = 0;
  for (const [i, w] of words(a.size)) {
    const atomic = n++ % 2 === 0;
    const ok =
      w === 8
        ? (atomic ? cpu.atomic_read64(va + i, me) : cpu.this_cpu_read64(a.ptr + i)) === le64(b, i)
        : (atomic ? cpu.atomic_read(va + i, w, me) : cpu.this_cpu_read(a.ptr + i, w)) === le(b, i, w);
    if (!ok) corrupt(cpu, a, me, `the ${w * 8}-bit word at ${i}`);
  }
}

/** this_cpu_add() on the fast path: count up, check, count back down to the stamp. */
function count(cpu: PerCpu, a: Area): void {
  const before = cpu.this_cpu_read(a.ptr, 4);
  const k = cpu.prng.int(2, 40);
  for (let i = 0; i < k; i++) cpu.this_cpu_inc(a.ptr);
  if (cpu.this_cpu_read(a.ptr, 4) !== ((before + k) | 0))
    corrupt(cpu, a, cpu.cpu, `the counter (after ${k} this_cpu_inc)`);
  cpu.this_cpu_add(a.ptr, -k);
}

/** Half the biggest area percpu serves (PCPU_MIN_UNIT_SIZE): two of them fill a chunk of the smallest unit. */
const WHOLE = 32 << 10;

/** The reload operation (see the file comment). */
async function reload(cpu: PerCpu): Promise<boolean> {
  const ptrs: number[] = [];
  for (let k = 0; k < 2; k++) {
    const p = await cpu.alloc_percpu(WHOLE, 8);
    if (p) ptrs.push(p);
  }
  const touch = (p: number, v: number): void => {
    cpu.this_cpu_add(p, v); // the fast path's cached translation
    cpu.this_cpu_write(p + 4, v); // the TLB of the 32-bit path
    cpu.this_cpu_write(p + 8, v, 1); // and every other width's translation
    cpu.this_cpu_write(p + 10, v, 2);
    cpu.this_cpu_write64(p + 16, BigInt(v));
  };
  for (const p of [...ptrs].reverse()) touch(p, 1);
  for (const p of ptrs) await cpu.free_percpu(p);
  const again: number[] = [];
  for (let k = 0; k < ptrs.length; k++) {
    const p = await cpu.alloc_percpu(WHOLE, 8);
    if (p) again.push(p);
  }
  for (const p of [...again].reverse()) {
    // a new area reads zero, through whatever translation the CPU has
    if (
      cpu.this_cpu_read(p + 4, 4) !== 0 ||
      cpu.this_cpu_read(p + 8, 1) !== 0 ||
      cpu.this_cpu_read(p + 10, 2) !== 0 ||
      cpu.this_cpu_read64(p + 16) !== 0n ||
      cpu.this_cpu_add(p, 3) !== 3
    )
      throw new CorruptionError(`cpu ${cpu.cpu}: the new area ${p.toString(16)} does not start at zero`);
    touch(p, 2);
  }
  if (again.length) await cpu.free_batch(again);
  return ptrs.length > 0;
}

/** One CPU's side of the stress board. Absent when the image has no board variables. */
class Board {
  private readonly seen: number[];
  private mine: Area | null = null;
  private gen = 0;
  acks = 0;

  private constructor(
    private readonly cpu: PerCpu,
    private readonly board: number,
    private readonly acksVar: number,
    private readonly done: number,
  ) {
    this.seen = new Array<number>(cpu.nr_cpus).fill(-1);
  }

  static open(cpu: PerCpu): Board | null {
    const v = cpu.ctx.static_vars;
    if (!v.stress_board || !v.stress_acks || !v.stress_done || cpu.nr_cpus < 2) return null;
    return new Board(cpu, v.stress_board.ptr, v.stress_acks.ptr, v.stress_done.ptr);
  }

  private fullyAcked(): boolean {
    return this.cpu.atomic_read(this.cpu.this_cpu_ptr(this.acksVar), 4, this.cpu.cpu) === this.cpu.nr_cpus - 1;
  }

  /** Retires a shared area everybody has checked; publishes a new one unless `last`. */
  async publish(last: boolean): Promise<void> {
    const cpu = this.cpu;
    if (this.mine && !this.fullyAcked()) return;
    if (this.mine) {
      cpu.atomic_write64(cpu.this_cpu_ptr(this.board), 0n);
      await cpu.free_percpu(this.mine.ptr);
      this.mine = null;
    }
    if (last) return;
    const size = cpu.prng.int(8, 64);
    const ptr = await cpu.alloc_percpu(size, 8);
    if (!ptr) return;
    this.gen = (this.gen + 1) & 0xff;
    this.mine = { ptr, size, stamp: this.gen, how: 'all' };
    for (let x = 0; x < cpu.nr_cpus; x++)
      cpu.writeBytes(cpu.per_cpu_ptr(ptr, x), pattern(cpu.cpu, x, this.gen, size), x === cpu.cpu ? false : x);
    cpu.atomic_write(cpu.this_cpu_ptr(this.acksVar), 0, 4);
    // the area's pointer is 8-aligned: its low three bits carry the generation again, so that a
    // reader whose 64-bit load tore (one half from this word, one from another) can tell
    const word = (BigInt(size) << 56n) | (BigInt(this.gen) << 48n) | BigInt(ptr) | BigInt(this.gen & 7);
    cpu.atomic_write64(cpu.this_cpu_ptr(this.board), word);
  }

  /** Checks and acknowledges the shared area of CPU `c` if it is new. Returns whether c's board is clear or seen. */
  serve(c: number): boolean {
    const cpu = this.cpu;
    const word = cpu.atomic_read64(cpu.per_cpu_ptr(this.board, c), c);
    if (word === 0n) return true;
    const gen = Number((word >> 48n) & 0xffn);
    const size = Number(word >> 56n);
    if (size < 8 || size > 64 || Number(word & 7n) !== (gen & 7))
      throw new CorruptionError(
        `cpu ${cpu.cpu}: cpu ${c}'s stress board read torn: 0x${word.toString(16)} is no word cpu ${c} wrote (size ${size}, generation ${gen} in the high half, ${Number(word & 7n)} in the low): an atomic 64-bit store or load done in two halves`,
      );
    if (gen === this.seen[c]) return true;
    const a: Area = { ptr: Number(word & 0xffff_ffff_fff8n), size, stamp: gen, how: 'all' };
    checkBytes(cpu, a, c, cpu.cpu); // the owner of this copy
    const third = [...Array(cpu.nr_cpus).keys()].find((y) => y !== c && y !== cpu.cpu);
    if (third !== undefined) checkBytes(cpu, a, c, third); // and a third CPU's copy
    cpu.atomic_add(cpu.per_cpu_ptr(this.acksVar, c), 1, 4, c);
    this.seen[c] = gen;
    this.acks++;
    return false;
  }

  serveOne(): void {
    const c = this.cpu.prng.int(0, this.cpu.nr_cpus - 1);
    if (c !== this.cpu.cpu) this.serve(c);
  }

  /** After the CPU's own operations: serve until every CPU is done and every board is clear. */
  async finish(stopped: () => boolean, timeoutMs: number): Promise<void> {
    const cpu = this.cpu;
    cpu.atomic_add(cpu.per_cpu_ptr(this.done, 0), 1, 4, 0);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (stopped()) throw new StopError('stopped');
      await this.publish(true);
      let clear = this.mine === null && cpu.atomic_read(cpu.per_cpu_ptr(this.done, 0), 4, 0) === cpu.nr_cpus;
      for (let c = 0; c < cpu.nr_cpus; c++) if (c !== cpu.cpu && !this.serve(c)) clear = false;
      if (clear) {
        // everybody is done; a board still set now is one this CPU has already seen
        let pending = false;
        for (let c = 0; c < cpu.nr_cpus; c++)
          if (c !== cpu.cpu && cpu.atomic_read64(cpu.per_cpu_ptr(this.board, c), c) !== 0n) pending = true;
        if (!pending) return;
      }
      if (Date.now() > deadline)
        throw new CorruptionError(
          `cpu ${cpu.cpu}: the stress board did not clear within ${timeoutMs} ms (a shared area was never acknowledged)`,
        );
      await cpu.relax();
    }
  }
}

/** The boot CPU before slab is online: small areas until the early map runs out. */
export async function stressEarly(
  cpu: PerCpu,
  args: StressArgs,
  stopped: () => boolean = () => false,
): Promise<{ live: Area[]; failed: number }> {
  const live: Area[] = [];
  let failed = 0;
  const rng = cpu.prng;
  for (let op = 0; op < args.earlyOps; op++) {
    if (stopped()) throw new StopError('stopped');
    if (live.length && rng.int(0, 99) < 10) {
      const a = live.splice(rng.int(0, live.length - 1), 1)[0]!;
      checkArea(cpu, a);
      await cpu.free_percpu(a.ptr);
      continue;
    }
    const size = rng.int(1, 48);
    const reserved = rng.int(0, 99) < 10;
    const ptr = reserved
      ? await cpu.alloc_reserved_percpu(size, 1 << rng.int(0, 3))
      : await cpu.alloc_percpu(size, 1 << rng.int(0, 3));
    if (!ptr) {
      failed++;
      continue;
    }
    const a: Area = { ptr, size, stamp: op, how: 'own' };
    stampArea(cpu, a);
    live.push(a);
  }
  return { live, failed };
}

export async function stressCpu(
  cpu: PerCpu,
  args: StressArgs,
  stopped: () => boolean = () => false,
  early: Area[] = [],
  /** the torn-access probe's area (probeArea), on free threads */
  probe = 0,
): Promise<StressCpuResult> {
  const out: StressCpuResult = {
    cpu: cpu.cpu,
    allocs: 0,
    failed: 0,
    frees: 0,
    checks: 0,
    acks: 0,
    inherited: early.length,
  };
  const live: Area[] = [...early];
  const rng = cpu.prng;
  const w = args as WorkerStressArgs;
  if (probe && w.tornProbe) await tornProbe(cpu, probe, w.tornProbe, w.word ?? 64);
  const board = Board.open(cpu);
  for (let op = 0; op < args.ops; op++) {
    if (stopped()) throw new StopError('stopped');
    const r = rng.int(0, 99);
    if (live.length < args.maxLive && (r < args.allocPct || live.length === 0)) {
      const reserved = rng.int(0, 99) < args.reservedPct;
      const size = reserved ? Math.min(pickSize(cpu, args.sizes), 512) : pickSize(cpu, args.sizes);
      const how: Stamp = rng.int(0, 9) < 6 ? 'own' : rng.int(0, 1) ? 'all' : 'words';
      // words are written at their natural alignment: such areas are at least 8-aligned
      const align =
        how === 'words' ? 1 << rng.int(3, Math.max(3, args.maxAlignShift)) : 1 << rng.int(0, args.maxAlignShift);
      const ptr = reserved ? await cpu.alloc_reserved_percpu(size, align) : await cpu.alloc_percpu(size, align);
      if (!ptr) {
        out.failed++;
        continue;
      }
      out.allocs++;
      const a: Area = { ptr, size, stamp: op, how };
      stampArea(cpu, a);
      live.push(a);
    } else if (r < args.allocPct + 10) {
      const a = live[rng.int(0, live.length - 1)]!;
      checkArea(cpu, a);
      if (a.how === 'words' && a.size >= 4) count(cpu, a);
      a.stamp = op;
      stampArea(cpu, a);
      out.checks++;
    } else if (board && r < args.allocPct + 16) {
      board.serveOne();
      await board.publish(false);
    } else if (r < args.allocPct + 18 && args.sizes !== 'small') {
      await reload(cpu);
    } else {
      const a = live.splice(rng.int(0, live.length - 1), 1)[0]!;
      checkArea(cpu, a);
      out.checks++;
      await cpu.free_percpu(a.ptr);
      out.frees++;
    }
  }
  for (const a of live) checkArea(cpu, a);
  if (live.length) await cpu.free_batch(live.map((a) => a.ptr));
  out.frees += live.length;
  if (board) {
    await board.finish(stopped, Math.max(cpu.ctx.barrier_timeout_ms, 60_000));
    out.acks = board.acks;
  }
  return out;
}

/**
 * What a stress run on free worker threads adds (examples/stress.ts passes them through): the
 * torn-access probe's length, and the machine's word, which says what may tear.
 */
export interface WorkerStressArgs extends StressArgs {
  /** iterations of the torn-access probe (0 or absent: none) */
  tornProbe?: number;
  word?: 32 | 64;
}

/** The value of width `bytes` whose every byte is `g`. */
const rep = (g: number, bytes: 2 | 4): number => (bytes === 2 ? g * 0x0101 : Math.imul(g, 0x0101_0101));
const REP64 = Array.from({ length: 256 }, (_, g) => BigInt.asIntN(64, BigInt(g) * 0x0101_0101_0101_0101n));

// the probe's area: each location written by one kind of store and read by one kind of load
const P_PLAIN64 = 0;
const P_ATOMIC64 = 8;
const P_STATS64 = 16;
const P_SEQ = 24;
const P_PLAIN32 = 28;
const P_ATOMIC32 = 32;
const P_ADD32 = 36;
const P_PLAIN16 = 40;
const P_ATOMIC16 = 42;
const P_SUM16 = 46;
const P_SUM64 = 48;
const P_SUM32 = 56;
/** the phase the writer has finished, for its reader */
const P_DONE = 60;
/** the phase the writer has begun */
const P_GO = 64;
/** the phase a reader is ready for (in the reader's own copy) */
const P_READY = 68;
/** how many times a reader saw the value change in this phase (its own copy) */
const P_SEEN = 72;
/** how many adds a CPU made to the counters (its own copy) */
const P_ADDS = 76;
const PROBE_SIZE = 80;
/**
 * Changes a reader must see in one phase (each a load that met the stores in progress) before
 * its writer stops: on a busy machine two threads share a core for long stretches, and only
 * loads made while both run can meet a store in its middle. A phase lasts PROBE_CAP_MS at most.
 */
const PROBE_SEEN = 4096;
/**
 * Straight through MemAccess a store takes tens of nanoseconds, and one split with nothing
 * between its halves is met by a load only when the cache line changes hands between them:
 * those phases run until their reader has seen this many changes (some milliseconds).
 */
const PROBE_SEEN_RAW = 1 << 16;
const PROBE_CAP_MS = 40;

/** One location of the probe: how its owner stores generation g there, and how another CPU loads it. */
interface ProbeKind {
  what: string;
  /** straight through MemAccess: the phase runs to PROBE_SEEN_RAW */
  raw?: boolean;
  bytes: 2 | 4 | 8;
  store(cpu: PerCpu, ptr: number, g: number, prev: number): void;
  load(cpu: PerCpu, ptr: number, owner: number): number | bigint;
}

const PROBE_KINDS: ProbeKind[] = [
  {
    what: 'per_cpu_read64 of its this_cpu_write64',
    bytes: 8,
    store: (cpu, ptr, g) => cpu.this_cpu_write64(ptr + P_PLAIN64, REP64[g]!),
    load: (cpu, ptr, o) => cpu.per_cpu_read64(ptr + P_PLAIN64, o),
  },
  {
    what: 'atomic_read64 of its atomic_write64',
    bytes: 8,
    store: (cpu, ptr, g) => cpu.atomic_write64(cpu.this_cpu_ptr(ptr) + P_ATOMIC64, REP64[g]!),
    load: (cpu, ptr, o) => cpu.atomic_read64(cpu.per_cpu_ptr(ptr, o) + P_ATOMIC64, o),
  },
  {
    what: 'a u64_stats reader (per_cpu_read64 under the sequence count) of its this_cpu_add64',
    bytes: 8,
    store: (cpu, ptr, g, prev) => {
      cpu.u64_stats_update_begin(ptr + P_SEQ);
      cpu.this_cpu_add64(ptr + P_STATS64, REP64[g]! - REP64[prev]!);
      cpu.u64_stats_update_end(ptr + P_SEQ);
    },
    load: (cpu, ptr, o) => {
      let v: bigint;
      let start: number;
      do {
        start = cpu.u64_stats_fetch_begin(ptr + P_SEQ, o);
        v = cpu.per_cpu_read64(ptr + P_STATS64, o);
      } while (cpu.u64_stats_fetch_retry(ptr + P_SEQ, o, start));
      return v;
    },
  },
  {
    what: 'per_cpu_read of its 32-bit this_cpu_write',
    bytes: 4,
    store: (cpu, ptr, g) => cpu.this_cpu_write(ptr + P_PLAIN32, rep(g, 4), 4),
    load: (cpu, ptr, o) => cpu.per_cpu_read(ptr + P_PLAIN32, o, 4),
  },
  {
    what: 'atomic_read of its 32-bit atomic_write',
    bytes: 4,
    store: (cpu, ptr, g) => cpu.atomic_write(cpu.this_cpu_ptr(ptr) + P_ATOMIC32, rep(g, 4), 4),
    load: (cpu, ptr, o) => cpu.atomic_read(cpu.per_cpu_ptr(ptr, o) + P_ATOMIC32, 4, o),
  },
  {
    what: 'per_cpu_read of its 32-bit this_cpu_add',
    bytes: 4,
    store: (cpu, ptr, g, prev) => void cpu.this_cpu_add(ptr + P_ADD32, (rep(g, 4) - rep(prev, 4)) | 0),
    load: (cpu, ptr, o) => cpu.per_cpu_read(ptr + P_ADD32, o, 4),
  },
  {
    what: 'per_cpu_read of its 16-bit this_cpu_write',
    bytes: 2,
    store: (cpu, ptr, g) => cpu.this_cpu_write(ptr + P_PLAIN16, rep(g, 2), 2),
    load: (cpu, ptr, o) => cpu.per_cpu_read(ptr + P_PLAIN16, o, 2),
  },
  {
    what: 'atomic_read of its 16-bit atomic_write',
    bytes: 2,
    store: (cpu, ptr, g) => cpu.atomic_write(cpu.this_cpu_ptr(ptr) + P_ATOMIC16, rep(g, 2), 2),
    load: (cpu, ptr, o) => cpu.atomic_read(cpu.per_cpu_ptr(ptr, o) + P_ATOMIC16, 2, o),
  },
];

/**
 * The same stores and loads straight through the machine's data path (MemAccess), with no
 * per-CPU API around them: a store there takes tens of nanoseconds, not a microsecond, so a
 * load meets a store split nanoseconds wide as often as one split by a whole API call.
 */
const RAW_KINDS: ProbeKind[] = [
  {
    what: 'a 64-bit load of its 64-bit stores (MemAccess.read64, write64)',
    raw: true,
    bytes: 8,
    store: (cpu, ptr, g) => void cpu.mem.write64(cpu.this_cpu_ptr(ptr) + P_PLAIN64, REP64[g]!),
    load: (cpu, ptr, o) => cpu.mem.read64(cpu.per_cpu_ptr(ptr, o) + P_PLAIN64) ?? 0n,
  },
  {
    what: 'an atomic 64-bit load of its atomic 64-bit stores (MemAccess.atomicLoad64, atomicStore64)',
    raw: true,
    bytes: 8,
    store: (cpu, ptr, g) => void cpu.mem.atomicStore64(cpu.this_cpu_ptr(ptr) + P_ATOMIC64, REP64[g]!),
    load: (cpu, ptr, o) => cpu.mem.atomicLoad64(cpu.per_cpu_ptr(ptr, o) + P_ATOMIC64) ?? 0n,
  },
  {
    what: 'a 32-bit load of its 32-bit stores (MemAccess.read32, write32)',
    raw: true,
    bytes: 4,
    store: (cpu, ptr, g) => void cpu.mem.write32(cpu.this_cpu_ptr(ptr) + P_PLAIN32, rep(g, 4)),
    load: (cpu, ptr, o) => cpu.mem.read32(cpu.per_cpu_ptr(ptr, o) + P_PLAIN32),
  },
  {
    what: 'an atomic 32-bit load of its atomic 32-bit stores (MemAccess.atomicLoad, atomicStore)',
    raw: true,
    bytes: 4,
    store: (cpu, ptr, g) => void cpu.mem.atomicStore(cpu.this_cpu_ptr(ptr) + P_ATOMIC32, rep(g, 4), 4),
    load: (cpu, ptr, o) => cpu.mem.atomicLoad(cpu.per_cpu_ptr(ptr, o) + P_ATOMIC32, 4),
  },
  {
    what: 'a 16-bit load of its 16-bit stores (MemAccess.read16, write16)',
    raw: true,
    bytes: 2,
    store: (cpu, ptr, g) => void cpu.mem.write16(cpu.this_cpu_ptr(ptr) + P_PLAIN16, rep(g, 2)),
    load: (cpu, ptr, o) => cpu.mem.read16(cpu.per_cpu_ptr(ptr, o) + P_PLAIN16),
  },
  {
    what: 'an atomic 16-bit load of its atomic 16-bit stores (MemAccess.atomicLoad, atomicStore)',
    raw: true,
    bytes: 2,
    store: (cpu, ptr, g) => void cpu.mem.atomicStore(cpu.this_cpu_ptr(ptr) + P_ATOMIC16, rep(g, 2), 2),
    load: (cpu, ptr, o) => cpu.mem.atomicLoad(cpu.per_cpu_ptr(ptr, o) + P_ATOMIC16, 2),
  },
];

/** Whether `v` is one store's value: every byte the same. */
function whole(v: number | bigint, bytes: 2 | 4 | 8): boolean {
  if (typeof v === 'bigint') return v === REP64[Number(v & 0xffn)];
  return v === rep(v & 0xff, bytes as 2 | 4);
}

function torn(cpu: PerCpu, writer: number, k: ProbeKind, got: number | bigint): never {
  const hexv = BigInt.asUintN(k.bytes * 8, BigInt(got))
    .toString(16)
    .padStart(k.bytes * 2, '0');
  throw new CorruptionError(
    `cpu ${cpu.cpu}: torn access: cpu ${writer} stores ${k.bytes * 8}-bit values whose bytes are all equal, and ${k.what} read 0x${hexv}, bytes of two different stores: a ${k.bytes * 8}-bit store or load done in parts`,
  );
}

/**
 * The torn-access probe, on free threads only (nothing tears one thread at a time): two CPUs,
 * started together, one storing values whose every byte carries the same generation through
 * each width and each kind of store (plain, atomic, this_cpu, a u64_stats counter, and
 * straight through MemAccess), the other loading them remotely, each load checked to be one
 * store's; one kind at a time, so that every load can meet a store in its middle. Then both
 * add to the same counters atomically, and the sums must come out whole. Aligned accesses of up to 64 bits
 * are single-copy atomic here (typed arrays and Atomics), so a correct data path never shows
 * a torn value. On a 32-bit machine a plain 64-bit value may tear: it is not probed there.
 */
export async function tornProbe(cpu: PerCpu, ptr: number, iters: number, word: 32 | 64): Promise<void> {
  const n = cpu.nr_cpus;
  const me = cpu.cpu;
  if (!ptr || n < 2 || iters <= 0) return;
  // CPU 0 stores to its copy and CPU 1 reads it; the others wait at the barrier, asleep, so
  // that on a busy machine the two spinning threads find cores at once as often as they can
  const writes = me === 0;
  const reads = me === 1 ? 0 : -1;
  // a 32-bit machine's plain 64-bit access is two: it may tear, and only the others are probed
  const kinds = [...PROBE_KINDS, ...RAW_KINDS].filter(
    (k) => word === 64 || k.bytes < 8 || /atomic|u64_stats/.test(k.what),
  );
  const readers = writes ? [1] : [];
  const deadline = Date.now() + 10_000;
  /** a partner failed or is stuck: its own CPU says why */
  const gone = (): boolean => cpu.aborted || Date.now() > deadline;
  const word4 = (c: number, off: number): number => cpu.atomic_read(cpu.per_cpu_ptr(ptr, c) + off, 4, c);
  /**
   * A spinning rendezvous of a writer and its readers, not a sleeping barrier: a thread woken
   * late on a busy machine would find its partner's phase over; here both are on a core when
   * the phase begins.
   */
  const rendezvous = (phase: number): void => {
    if (writes) {
      for (const r of readers) while (word4(r, P_READY) < phase && !gone());
      cpu.atomic_write(cpu.this_cpu_ptr(ptr) + P_GO, phase, 4);
    } else if (reads >= 0) {
      cpu.atomic_write(cpu.this_cpu_ptr(ptr) + P_READY, phase, 4);
      while (word4(reads, P_GO) < phase && !gone());
    }
  };
  await cpu.barrier();
  for (let phase = 1; phase <= kinds.length; phase++) {
    const k = kinds[phase - 1]!;
    if (reads >= 0) cpu.atomic_write(cpu.this_cpu_ptr(ptr) + P_SEEN, 0, 4);
    rendezvous(phase);
    if (writes) {
      const end = Math.min(deadline, Date.now() + PROBE_CAP_MS);
      let prev = 0;
      for (let i = 0; ; i++) {
        const g = (i % 255) + 1;
        k.store(cpu, ptr, g, prev);
        prev = g;
        if (
          (i & 63) === 63 &&
          i >= iters &&
          (readers.every((r) => word4(r, P_SEEN) >= (k.raw ? PROBE_SEEN_RAW : PROBE_SEEN)) ||
            Date.now() > end ||
            cpu.aborted)
        )
          break;
      }
      cpu.atomic_write(cpu.this_cpu_ptr(ptr) + P_DONE, phase, 4);
    } else if (reads >= 0) {
      let last: number | bigint = -1;
      let seen = 0;
      // its own bookkeeping goes through the API: rarer between loads that cost less
      const every = k.raw ? 255 : 15;
      for (let i = 0; ; i++) {
        const v = k.load(cpu, ptr, reads);
        if (!whole(v, k.bytes)) torn(cpu, reads, k, v);
        if (v !== last) {
          last = v;
          seen++;
        }
        if ((i & every) === 0) {
          cpu.atomic_write(cpu.this_cpu_ptr(ptr) + P_SEEN, seen, 4);
          if (word4(reads, P_DONE) >= phase) break;
        }
        if ((i & 1023) === 0 && gone()) break;
      }
    }
  }
  // then every CPU of a pair adds to the writer's counters at once, through the API and then
  // straight through MemAccess, until each has seen the other's count move under it often
  // enough (or the phase's time is up)
  const owner = writes ? me : reads;
  const mine = cpu.this_cpu_ptr(ptr) + P_ADDS;
  let added = 0;
  for (const raw of [false, true]) {
    rendezvous(kinds.length + (raw ? 2 : 1));
    if (owner < 0) continue;
    const va = cpu.per_cpu_ptr(ptr, owner);
    const remote = owner === me ? false : owner;
    const partners = writes ? readers : [reads];
    const end = Math.min(deadline, Date.now() + PROBE_CAP_MS);
    let moved = 0;
    let before = partners.map((c) => word4(c, P_ADDS));
    for (let i = 1; ; i++) {
      if (raw) {
        cpu.mem.atomicAdd64(va + P_SUM64, 1n);
        cpu.mem.atomicAdd(va + P_SUM32, 1, 4);
        cpu.mem.atomicAdd(va + P_SUM16, 1, 2);
      } else {
        cpu.atomic_add64(va + P_SUM64, 1n, remote);
        cpu.atomic_add(va + P_SUM32, 1, 4, remote);
        cpu.atomic_add(va + P_SUM16, 1, 2, remote);
      }
      if ((i & 15) === 0) {
        cpu.atomic_write(mine, added + i, 4);
        const now = partners.map((c) => word4(c, P_ADDS));
        if (now.some((x, j) => x !== before[j])) moved++;
        before = now;
        if (i >= iters && (moved >= PROBE_SEEN / 16 || Date.now() > end || cpu.aborted)) {
          added += i;
          break;
        }
      }
    }
  }
  await cpu.barrier();
  if (writes) {
    const want = [me, ...readers].reduce((sum, c) => sum + word4(c, P_ADDS), 0);
    const va = cpu.this_cpu_ptr(ptr);
    const sums: [string, number | bigint, number | bigint][] = [
      ['64-bit atomic_add64', cpu.atomic_read64(va + P_SUM64, me), BigInt(want)],
      ['32-bit atomic_add', cpu.atomic_read(va + P_SUM32, 4, me), want],
      ['16-bit atomic_add', cpu.atomic_read(va + P_SUM16, 2, me), want & 0xffff],
    ];
    for (const [what, got, exp] of sums)
      if (got !== exp)
        throw new CorruptionError(
          `cpu ${me}: lost update: ${1 + readers.length} CPUs made ${want} ${what}s of 1 to one counter at once and it holds ${got}, not ${exp}: an atomic add done as a load and a store`,
        );
  }
  await cpu.barrier();
  if (me === 0) await cpu.free_percpu(ptr);
}

/** The probe's area, allocated by the boot CPU before the others start (0: no probe). */
export async function probeArea(cpu: PerCpu, args: WorkerStressArgs): Promise<number> {
  return args.tornProbe && !cpu.gate && cpu.nr_cpus >= 2 ? cpu.alloc_percpu(PROBE_SIZE, 8) : 0;
}
