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
