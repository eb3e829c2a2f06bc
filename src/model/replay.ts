/**
 * The trace replay format (docs/replay-format.md) on the model: the same output lines as
 * `percpu-sim replay`, and the same message for the first bad line, from the model alone.
 * The model's machine never runs out of memory or vmalloc space, so a trace that exhausts
 * the simulator's replay machine (a warning there) is the one place the two may differ.
 */
import { BootFailure, blockNodes, bootFirstChunk, nodeDistance } from './first-chunk.ts';
import { PAGE_SIZE, type PercpuModel, RESERVED } from './percpu.ts';

/** A line that is not a valid operation at that point; the message is `percpu-sim replay`'s. */
export class ReplayError extends Error {
  constructor(
    readonly line: number,
    readonly what: string,
  ) {
    super(`line ${line}: ${what}`);
  }
}

const MAX_STATIC = 1 << 24;
const MAX_CPUS = 1024;
const MAX_NODES = 16;

type Json = Record<string, unknown>;
/** The keys each operation takes; any other is bad input. */
const KEYS: Record<string, readonly string[]> = {
  boot: ['static_size', 'reserved_size', 'dyn_size', 'cpus', 'nodes', 'atom_size', 'backend'],
  alloc: ['id', 'size', 'align', 'reserved'],
  free: ['id'],
  slab_online: [],
  init_late: [],
};
/** what an id stands for: an area, null for a failed allocation (a NULL pointer), or freed */
type Placed = { chunk: number; off: number } | null | 'freed';

/** Replays a whole trace, writing each output line as it is produced. Throws ReplayError at the first bad line. */
export function replayOnModel(text: string, write: (line: string) => void): void {
  if (!text.trim()) throw new ReplayError(1, 'the trace is empty: it must start with a "boot" line');
  const r = new ModelReplayer();
  text.split('\n').forEach((raw, i) => {
    const out = r.step(raw.endsWith('\r') ? raw.slice(0, -1) : raw, i + 1);
    if (out !== null) write(out);
  });
}

/** An alloc line without spaces, escapes, a reserved flag or a number JSON would refuse or round. */
const PLAIN_ALLOC = /^\{"op":"alloc","id":"([^"\\\x00-\x1f]*)","size":(0|[1-9]\d{0,14}),"align":(0|[1-9]\d{0,14})\}$/;
/** A free line spelled the same way. */
const PLAIN_FREE = /^\{"op":"free","id":"([^"\\\x00-\x1f]*)"\}$/;

export class ModelReplayer {
  model: PercpuModel | null = null;
  private readonly ids = new Map<string, Placed>();

  /** One input line: its output line, or null for a blank line. Throws ReplayError. */
  step(text: string, line: number): string | null {
    // most lines are spelled one way: those are read by pattern, with the same checks and words
    const plain = PLAIN_ALLOC.exec(text);
    if (plain)
      return this.allocLine(
        line,
        plain[1]!,
        () => Number(plain[2]),
        () => Number(plain[3]),
        false,
      );
    const plainFree = PLAIN_FREE.exec(text);
    if (plainFree) return this.freeLine(line, plainFree[1]!);
    if (text.trim() === '') return null;
    const bad = (what: string): ReplayError => new ReplayError(line, what);
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch (e) {
      throw bad(
        `not valid JSON (${(e as Error).message.replaceAll('\ufeff', '<U+FEFF>')})${text.includes('\ufeff') ? ' (the line holds a byte order mark, U+FEFF)' : ''}`,
      );
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad('expected a JSON object');
    const op = o as Json;
    const booted = (what: string): PercpuModel => {
      if (!this.model) throw bad(`"${what}" before "boot" (boot must come first)`);
      return this.model;
    };
    const int = (name: string, min: number, max: number, dflt?: number): number => {
      const v = op[name];
      if (v === undefined) {
        if (dflt !== undefined) return dflt;
        throw bad(`missing "${name}"`);
      }
      if (typeof v === 'number' && !Number.isFinite(v))
        throw bad(`"${name}" must be an integer in [${min}, ${max}], got a number too large to hold`);
      if (typeof v !== 'number' || !Number.isInteger(v))
        throw bad(`"${name}" must be an integer, got ${JSON.stringify(v)}`);
      if (v < min || v > max) throw bad(`"${name}" must be in [${min}, ${max}], got ${v}`);
      return v;
    };
    const id = (): string => {
      if (typeof op.id !== 'string')
        throw bad(op.id === undefined ? 'missing "id"' : `"id" must be a string, got ${JSON.stringify(op.id)}`);
      return op.id;
    };

    if (typeof op.op === 'string' && Object.hasOwn(KEYS, op.op)) {
      const takes = KEYS[op.op]!;
      const extra = Object.keys(op).find((k) => k !== 'op' && !takes.includes(k));
      if (extra !== undefined)
        throw bad(
          `"${op.op}" has no key ${JSON.stringify(extra)} (${takes.length ? `it takes ${takes.join(', ')}` : 'it takes none but "op"'})`,
        );
    }
    switch (op.op) {
      case 'boot': {
        if (this.model) throw bad('"boot" may appear only once');
        const staticSize = int('static_size', 1, MAX_STATIC);
        const reservedSize = int('reserved_size', 0, MAX_STATIC);
        const dynSize = int('dyn_size', 0, MAX_STATIC);
        const cpus = int('cpus', 1, MAX_CPUS, 4);
        const nodes = int('nodes', 1, MAX_NODES, 1);
        if (nodes > cpus) throw bad(`"nodes" is ${nodes} but "cpus" is ${cpus}: every node needs a CPU`);
        const atomSize = int('atom_size', PAGE_SIZE, 1 << 30, PAGE_SIZE);
        if (atomSize & (atomSize - 1)) throw bad(`"atom_size" must be a power of two, got ${atomSize}`);
        const backend = op.backend ?? 'vm';
        if (backend !== 'vm' && backend !== 'km')
          throw bad(`"backend" must be "vm" or "km", got ${JSON.stringify(backend)}`);
        const cpuToNode = blockNodes(cpus, nodes);
        try {
          // the format's rule: more than one node groups units by node, whatever the backend
          const distance = nodes > 1 ? nodeDistance(cpuToNode) : null;
          const spec = { cpus, cpuToNode, distance, staticSize, reservedSize, dynSize, atomSize, backend } as const;
          this.model = bootFirstChunk(spec).model;
        } catch (e) {
          if (e instanceof BootFailure) throw bad(`boot failed: ${e.message}`);
          throw e;
        }
        const l = this.model.layout;
        return `{"op":"boot","unit_size":${l.unitSize},"static_size":${staticSize},"reserved_size":${reservedSize},"dyn_size":${l.dynSize}}`;
      }
      case 'alloc': {
        booted('alloc');
        const reserved = (): boolean => {
          const r = op.reserved ?? false;
          if (typeof r !== 'boolean') throw bad(`"reserved" must be true or false, got ${JSON.stringify(r)}`);
          return r;
        };
        return this.allocLine(
          line,
          id(),
          () => int('size', 0, Number.MAX_SAFE_INTEGER),
          () => int('align', 0, Number.MAX_SAFE_INTEGER),
          reserved,
        );
      }
      case 'free':
        booted('free');
        return this.freeLine(line, id());
      case 'slab_online': {
        const model = booted('slab_online');
        if (model.slab) throw bad('"slab_online" may appear only once');
        model.applySlabOnline();
        return '{"op":"slab_online"}';
      }
      case 'init_late': {
        const model = booted('init_late');
        if (!model.slab) throw bad('"init_late" before "slab_online" (percpu_init_late needs slab)');
        if (model.lateInit) throw bad('"init_late" may appear only once');
        model.applyInitLate();
        return '{"op":"init_late"}';
      }
      default:
        throw bad(
          op.op === undefined
            ? 'missing "op"'
            : `unknown op ${JSON.stringify(op.op)} (expected boot, alloc, free, slab_online or init_late)`,
        );
    }
  }

  /**
   * An alloc line: its id, then size, align and the reserved flag read in that order (each
   * throws the line's error when bad), the allocation on the model, and the output line.
   */
  private allocLine(
    line: number,
    name: string,
    size: () => number,
    align: () => number,
    reserved: boolean | (() => boolean),
  ): string {
    const model = this.booted(line, 'alloc');
    const prev = this.ids.get(name);
    if (prev !== undefined && prev !== null && prev !== 'freed')
      throw new ReplayError(line, `id ${JSON.stringify(name)} is still live`);
    const s = size();
    const a = align();
    const r = model.alloc(s, a, typeof reserved === 'boolean' ? reserved : reserved());
    const jid = JSON.stringify(name);
    if ('error' in r) {
      this.ids.set(name, null);
      return `{"op":"alloc","id":${jid},"chunk":null,"error":${JSON.stringify(r.error)}}`;
    }
    this.ids.set(name, r);
    return `{"op":"alloc","id":${jid},"chunk":${r.chunk === RESERVED ? '"reserved"' : r.chunk},"offset":${r.off}}`;
  }

  /** A free line: the area its id names goes back (an id whose allocation failed frees nothing). */
  private freeLine(line: number, name: string): string {
    const model = this.booted(line, 'free');
    const placed = this.ids.get(name);
    if (placed === undefined) throw new ReplayError(line, `id ${JSON.stringify(name)} was never allocated`);
    if (placed === 'freed') throw new ReplayError(line, `id ${JSON.stringify(name)} is already freed`);
    if (placed) model.free(placed.chunk, placed.off); // free_percpu(NULL) does nothing
    this.ids.set(name, 'freed');
    return `{"op":"free","id":${JSON.stringify(name)}}`;
  }

  private booted(line: number, what: string): PercpuModel {
    if (!this.model) throw new ReplayError(line, `"${what}" before "boot" (boot must come first)`);
    return this.model;
  }
}
