/**
 * `percpu-sim replay`: runs a JSON Lines trace of allocator operations through the kernel
 * core and reports one JSON line per operation. The contract is shared/replay-format.md;
 * every field name and message here is part of it.
 */
import { Machine } from '../mem/machine.ts';
import { MAX_NUMNODES } from '../mem/layout.ts';
import { MAX_MEMORY_NO_CONTENTS, MAX_VMALLOC } from '../mem/phys.ts';
import { KernelBug } from '../kernel/bug.ts';
import { RESERVED_CHUNK_ID } from '../kernel/chunk.ts';
import { PAGE_SIZE } from '../kernel/constants.ts';
import type { AllocResult, Percpu } from '../kernel/percpu.ts';
import type { PercpuEnv } from '../kernel/percpu-internal.ts';
import { mm_init } from '../kernel/setup.ts';
import { bootMachine } from '../sim/boot.ts';
import type { KernelFault } from '../kernel/mutants.ts';
import { runSync } from '../sim/drive-sync.ts';
import { IdTable, IdValues } from './id-table.ts';
import { STEP, finish } from '../util/steps.ts';

/** A line of the trace that is not a valid operation at that point. */
export class BadInput extends Error {
  constructor(
    readonly line: number,
    readonly what: string,
  ) {
    super(`line ${line}: ${what}`);
  }
}

export interface ReplayOptions {
  /** told once when the replay machine itself runs out of memory or vmalloc space */
  onResourceLimit?: (message: string) => void;
  /** physical memory of the replay machine, in bytes */
  memoryBytes?: number;
  /** vmalloc space of the replay machine, in bytes */
  vmallocBytes?: number;
  /** the environment the boot line builds the allocator with (a benchmark installs a watcher); none by default */
  env?: PercpuEnv;
  /** bugs to build the allocator with (tests of what holds the allocator against 2.6.36) */
  bugs?: readonly KernelFault[];
  /** called with the allocator a boot line has built (a benchmark installs a watcher here) */
  onBoot?: (pc: Percpu) => void;
  /** called after each operation with its line number, the input and the output line */
  onStep?: (lineNo: number, input: string, output: string) => void;
}

export interface ReplaySummary {
  lines: number;
  ops: number;
  allocs: number;
  failed: number;
  frees: number;
  pc: Percpu | null;
}

const FREED = -1;
const MAX_STATIC = 1 << 24;
const MAX_CPUS = 1024;
// the machine keeps no bytes (contents: false), so its size costs only the pages in use: as
// large as a machine without bytes may be, so that only a trace that keeps more than 64 GiB
// populated meets its limit
const DEFAULT_REPLAY_MEMORY = MAX_MEMORY_NO_CONTENTS;
const DEFAULT_REPLAY_VMALLOC = MAX_VMALLOC;

type Json = Record<string, unknown>;

// The two common lines exactly as writers print them: ids without escapes, integers as JSON
// writes them (no leading zeros, no sign, no exponent), nothing else on the line.
const INT = '(0|[1-9][0-9]{0,14})';
const ID = '"([A-Za-z0-9_.:/+-]*)"';
const FAST_ALLOC = new RegExp(`^\\{"op":"alloc","id":${ID},"size":${INT},"align":${INT}\\}$`);
const FAST_FREE = new RegExp(`^\\{"op":"free","id":${ID}\\}$`);

export class Replayer {
  private pc: Percpu | null = null;
  private machine: Machine | null = null;
  private slab = false;
  private late = false;
  private warnedLimit = false;
  /** key -> percpu pointer (0 when the allocation failed), or FREED */
  private readonly values = new IdValues();
  readonly summary: ReplaySummary = { lines: 0, ops: 0, allocs: 0, failed: 0, frees: 0, pc: null };

  /** `ids` gives each line's id its key: a reader of bytes passes the table it keys ids with. */
  constructor(
    private readonly opts: ReplayOptions = {},
    private readonly ids: IdTable = new IdTable(),
  ) {}

  /**
   * Applies one input line and returns its output line, or null for a blank line.
   * Throws BadInput (and changes nothing) when the line is not a valid operation here.
   */
  step(text: string, lineNo: number): string | null {
    this.summary.lines = lineNo;
    // the shapes a trace is mostly made of, read without building an object; anything else
    // (other key orders, spaces, escapes, "reserved") goes through JSON.parse below
    const fast = FAST_ALLOC.exec(text) ?? FAST_FREE.exec(text);
    if (fast) {
      if (fast[2] === undefined) {
        this.freeLine(fast[1]!, lineNo);
        return freeOutput(JSON.stringify(fast[1]!));
      }
      return allocOutput(
        JSON.stringify(fast[1]!),
        this.allocLine(fast[1]!, Number(fast[2]), Number(fast[3]), false, lineNo),
      );
    }
    if (text.trim() === '') return null;
    let op: unknown;
    try {
      op = JSON.parse(text);
    } catch (e) {
      throw new BadInput(
        lineNo,
        `not valid JSON (${(e as Error).message.replaceAll('\ufeff', '<U+FEFF>')})${bomNote(text)}`,
      );
    }
    if (typeof op !== 'object' || op === null || Array.isArray(op))
      throw new BadInput(lineNo, 'expected a JSON object');
    const o = op as Json;
    this.summary.ops++;
    checkKeys(o, lineNo);
    switch (o.op) {
      case 'boot':
        return this.boot(o, lineNo);
      case 'alloc':
        return this.alloc(o, lineNo);
      case 'free':
        return this.free(o, lineNo);
      case 'slab_online':
        return this.slabOnline(lineNo);
      case 'init_late':
        return this.initLate(lineNo);
      default:
        throw new BadInput(
          lineNo,
          o.op === undefined
            ? 'missing "op"'
            : `unknown op ${JSON.stringify(o.op)} (expected boot, alloc, free, slab_online or init_late)`,
        );
    }
  }

  /**
   * An alloc line already read into its fields (checked as step() checks them: an integer
   * size and align of at most 15 digits): places it and returns the allocator's result, from
   * which allocOutput() writes the output line. Throws BadInput as step() would.
   */
  allocLine(id: string, size: number, align: number, reserved: boolean, lineNo: number): AllocResult {
    return this.allocAt(this.ids.key(id), size, align, reserved, lineNo);
  }

  /** A free line already read into its id: frees it (freeOutput() is its output line). Throws BadInput as step() would. */
  freeLine(id: string, lineNo: number): void {
    this.freeAt(this.ids.key(id), lineNo);
  }

  /** allocLine() for the id of key `key` (see IdTable). */
  allocAt(key: number, size: number, align: number, reserved: boolean, lineNo: number): AllocResult {
    this.summary.lines = lineNo;
    this.summary.ops++;
    const pc = this.booted(lineNo, 'alloc');
    this.refuseLive(key, lineNo);
    return this.place(pc, key, size, align, reserved, lineNo);
  }

  /** freeLine() for the id of key `key`. */
  freeAt(key: number, lineNo: number): void {
    this.summary.lines = lineNo;
    this.summary.ops++;
    this.freeKey(this.booted(lineNo, 'free'), key, lineNo);
  }

  private booted(lineNo: number, what: string): Percpu {
    if (!this.pc) throw new BadInput(lineNo, `"${what}" before "boot" (boot must come first)`);
    return this.pc;
  }

  private boot(o: Json, lineNo: number): string {
    if (this.pc) throw new BadInput(lineNo, '"boot" may appear only once');
    const static_size = intField(o, 'static_size', lineNo, 1, MAX_STATIC);
    const reserved_size = intField(o, 'reserved_size', lineNo, 0, MAX_STATIC);
    const dyn_size = intField(o, 'dyn_size', lineNo, 0, MAX_STATIC);
    const cpus = intField(o, 'cpus', lineNo, 1, MAX_CPUS, 4);
    const nodes = intField(o, 'nodes', lineNo, 1, MAX_NUMNODES, 1);
    if (nodes > cpus) throw new BadInput(lineNo, `"nodes" is ${nodes} but "cpus" is ${cpus}: every node needs a CPU`);
    const atom_size = intField(o, 'atom_size', lineNo, PAGE_SIZE, 1 << 30, PAGE_SIZE);
    if (atom_size & (atom_size - 1)) throw new BadInput(lineNo, `"atom_size" must be a power of two, got ${atom_size}`);
    const backend = o.backend ?? 'vm';
    if (backend !== 'vm' && backend !== 'km')
      throw new BadInput(lineNo, `"backend" must be "vm" or "km", got ${JSON.stringify(backend)}`);
    let pc: Percpu;
    try {
      const booted = bootMachine({
        cpus,
        nodes,
        memoryMiB: (this.opts.memoryBytes ?? DEFAULT_REPLAY_MEMORY) / 2 ** 20,
        vmallocBytes: this.opts.vmallocBytes ?? DEFAULT_REPLAY_VMALLOC,
        // no line reads an area's bytes: placement and page accounting are all there is
        contents: false,
        backend,
        // the trace format's rule: more than one node means groups by node, whatever the backend
        numaGroups: nodes > 1,
        sizes: { static_size, reserved_size, dyn_size, atom_size },
        ...(this.opts.env ? { env: this.opts.env } : {}),
        ...(this.opts.bugs ? { bugs: this.opts.bugs } : {}),
      });
      const machine = booted.machine;
      pc = booted.pc;
      this.machine = machine;
    } catch (e) {
      if (e instanceof KernelBug || (e as Error).name === 'MemError')
        throw new BadInput(lineNo, `boot failed: ${(e as Error).message}`);
      throw e;
    }
    this.pc = pc;
    this.opts.onBoot?.(pc);
    this.summary.pc = pc;
    return `{"op":"boot","unit_size":${pc.pcpu_unit_size},"static_size":${static_size},"reserved_size":${reserved_size},"dyn_size":${pc.pcpu_dyn_size}}`;
  }

  private alloc(o: Json, lineNo: number): string {
    const pc = this.booted(lineNo, 'alloc');
    const id = idField(o, lineNo);
    const key = this.ids.key(id);
    this.refuseLive(key, lineNo);
    const size = intField(o, 'size', lineNo, 0, Number.MAX_SAFE_INTEGER);
    const align = intField(o, 'align', lineNo, 0, Number.MAX_SAFE_INTEGER);
    const reserved = o.reserved ?? false;
    if (typeof reserved !== 'boolean')
      throw new BadInput(lineNo, `"reserved" must be true or false, got ${JSON.stringify(reserved)}`);
    return allocOutput(JSON.stringify(id), this.place(pc, key, size, align, reserved, lineNo));
  }

  /** An id may be allocated when it is new, freed, or its allocation failed. */
  private refuseLive(key: number, lineNo: number): void {
    const prev = this.values.getAt(key);
    if (prev !== undefined && prev !== FREED && prev !== 0)
      throw new BadInput(lineNo, `id ${JSON.stringify(this.ids.idAt(key))} is still live`);
  }

  /**
   * An allocation whose line has been checked: the allocator places it and the id at `key`
   * stands for it; returns its result. Says once when the replay machine's size made it fail.
   */
  private place(pc: Percpu, key: number, size: number, align: number, reserved: boolean, lineNo: number): AllocResult {
    const r = runSync(pc, reserved ? pc.__alloc_reserved_percpu(size, align) : pc.__alloc_percpu(size, align));
    this.values.setAt(key, r.ptr);
    this.summary.allocs++;
    if (!r.ptr) {
      this.summary.failed++;
      // with slab online and no fault injection, these can only come from the size of the
      // simulated machine, not from the algorithm: say so, since placement may then diverge
      if (
        this.slab &&
        (r.error === 'failed to populate' || r.error === 'failed to allocate new chunk') &&
        !this.warnedLimit
      ) {
        this.warnedLimit = true;
        this.opts.onResourceLimit?.(
          `line ${lineNo}: the replay machine ran out of ${r.error === 'failed to populate' ? 'physical memory' : 'vmalloc space'} ("${r.error}"); from here on placement reflects that limit (try --memory)`,
        );
      }
    }
    return r;
  }

  private free(o: Json, lineNo: number): string {
    const pc = this.booted(lineNo, 'free');
    const id = idField(o, lineNo);
    this.freeKey(pc, this.ids.key(id), lineNo);
    return freeOutput(JSON.stringify(id));
  }

  /** Frees what the id at `key` stands for; BadInput, changing nothing, when it stands for no live area. */
  private freeKey(pc: Percpu, key: number, lineNo: number): void {
    const ptr = this.values.getAt(key);
    if (ptr === undefined) throw new BadInput(lineNo, `id ${JSON.stringify(this.ids.idAt(key))} was never allocated`);
    if (ptr === FREED) throw new BadInput(lineNo, `id ${JSON.stringify(this.ids.idAt(key))} is already freed`);
    runSync(pc, pc.free_percpu(ptr));
    this.values.setAt(key, FREED);
    this.summary.frees++;
  }

  private slabOnline(lineNo: number): string {
    const pc = this.booted(lineNo, 'slab_online');
    if (this.slab) throw new BadInput(lineNo, '"slab_online" may appear only once');
    mm_init(this.machine!, pc);
    this.slab = true;
    return '{"op":"slab_online"}';
  }

  private initLate(lineNo: number): string {
    const pc = this.booted(lineNo, 'init_late');
    if (!this.slab) throw new BadInput(lineNo, '"init_late" before "slab_online" (percpu_init_late needs slab)');
    if (this.late) throw new BadInput(lineNo, '"init_late" may appear only once');
    runSync(pc, pc.percpu_init_late());
    this.late = true;
    return '{"op":"init_late"}';
  }
}

/** The output line of an allocation, `jid` its id as JSON. */
export function allocOutput(jid: string, r: AllocResult): string {
  if (!r.ptr) return `{"op":"alloc","id":${jid},"chunk":null,"error":${JSON.stringify(r.error)}}`;
  const chunk = r.chunk!.id === RESERVED_CHUNK_ID ? '"reserved"' : String(r.chunk!.id);
  return `{"op":"alloc","id":${jid},"chunk":${chunk},"offset":${r.off}}`;
}

/** The output line of a free, `jid` its id as JSON. */
export function freeOutput(jid: string): string {
  return `{"op":"free","id":${jid}}`;
}

/** The keys each operation takes: any other key (a misspelt "reserve") is bad input, not ignored. */
const KEYS: Record<string, readonly string[]> = {
  boot: ['static_size', 'reserved_size', 'dyn_size', 'cpus', 'nodes', 'atom_size', 'backend'],
  alloc: ['id', 'size', 'align', 'reserved'],
  free: ['id'],
  slab_online: [],
  init_late: [],
};

function checkKeys(o: Json, lineNo: number): void {
  if (typeof o.op !== 'string' || !Object.hasOwn(KEYS, o.op)) return;
  const takes = KEYS[o.op]!;
  for (const k of Object.keys(o))
    if (k !== 'op' && !takes.includes(k))
      throw new BadInput(
        lineNo,
        `"${o.op}" has no key ${JSON.stringify(k)} (${takes.length ? `it takes ${takes.join(', ')}` : 'it takes none but "op"'})`,
      );
}

/** A byte order mark inside a line is invisible in a message: name it. */
function bomNote(text: string): string {
  return text.includes('\ufeff') ? ' (the line holds a byte order mark, U+FEFF)' : '';
}

function intField(o: Json, name: string, lineNo: number, min: number, max: number, dflt?: number): number {
  const v = o[name];
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new BadInput(lineNo, `missing "${name}"`);
  }
  if (typeof v === 'number' && !Number.isFinite(v))
    throw new BadInput(lineNo, `"${name}" must be an integer in [${min}, ${max}], got a number too large to hold`);
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new BadInput(lineNo, `"${name}" must be an integer, got ${JSON.stringify(v)}`);
  if (v < min || v > max) throw new BadInput(lineNo, `"${name}" must be in [${min}, ${max}], got ${v}`);
  return v;
}

function idField(o: Json, lineNo: number): string {
  const id = o.id;
  if (typeof id !== 'string')
    throw new BadInput(lineNo, id === undefined ? 'missing "id"' : `"id" must be a string, got ${JSON.stringify(id)}`);
  return id;
}

/**
 * Replays a whole trace held in memory, writing each output line through `write` as soon as
 * it is produced. Throws BadInput at the first bad line, after writing every earlier line.
 */
export function replayText(text: string, write: (line: string) => void, opts: ReplayOptions = {}): ReplaySummary {
  return finish(replaySteps(text, write, opts));
}

/** replayText, yielding the number of the line it has come to every STEP lines. */
export function* replaySteps(
  text: string,
  write: (line: string) => void,
  opts: ReplayOptions = {},
): Generator<number, ReplaySummary> {
  if (!text.trim()) throw new BadInput(1, 'the trace is empty: it must start with a "boot" line');
  const r = new Replayer(opts);
  let lineNo = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    if (lineNo % STEP === 0) yield lineNo;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const out = r.step(line, lineNo);
    if (out !== null) {
      write(out);
      opts.onStep?.(lineNo, line, out);
    }
    start = end + 1;
  }
  return r.summary;
}
