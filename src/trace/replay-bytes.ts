/**
 * Trace replay straight from bytes, for the `replay` command: the trace is read in blocks,
 * never whole, and the lines traces are made of (alloc and free, as any JSON writer prints
 * them: spaces or none, keys in any order) are read without building a string of the line or
 * an object, their output written as bytes. Every other line goes through Replayer.step() as
 * text, so the output is replayText()'s, byte for byte.
 */
import { Buffer } from 'node:buffer';
import { RESERVED_CHUNK_ID } from '../kernel/chunk.ts';
import type { AllocResult } from '../kernel/percpu.ts';
import { STEP } from '../util/steps.ts';
import { IdTable } from './id-table.ts';
import { OP_ALLOC, OP_FREE, asciiBytes, fastOp, flat, wordAt } from './flat-line.ts';
import { Lines } from './lines.ts';
import { BadInput, Replayer, type ReplayOptions, type ReplaySummary } from './replay.ts';
import type { ReadBytes } from './trace-text.ts';

const OUT_BLOCK = 1 << 18;

/**
 * Output lines gathered into blocks, each given to `write` whole. `write` says whether the
 * block is out (a file's write is done when it returns): then the next block is gathered in
 * the same memory; otherwise (a pipe's write may wait in a queue) the block is not touched
 * again, and the next one gets memory of its own. Reusing it keeps a replay's memory flat:
 * a new block per write would leave tens of megabytes to the garbage collector.
 */
export class ByteLines {
  private buf: Buffer = Buffer.allocUnsafe(OUT_BLOCK);
  /** buf, for writing a literal's words */
  private view = viewOf(this.buf);
  private at = 0;

  /** the last block written is still held by the writer (a pipe's queue): see replayBytes() */
  held = false;

  constructor(private readonly write: (block: Buffer) => boolean) {}

  /** Room for `n` more bytes. */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.setBuf(Buffer.allocUnsafe(n));
  }

  private setBuf(buf: Buffer): void {
    this.buf = buf;
    this.view = viewOf(buf);
  }

  /** Writes the blocks gathered so far. */
  flush(): void {
    if (!this.at) return;
    this.held = !this.write(this.buf.subarray(0, this.at));
    if (this.held) this.setBuf(Buffer.allocUnsafe(Math.max(OUT_BLOCK, this.buf.length)));
    this.at = 0;
  }

  /** A line given as text, and its newline. */
  text(s: string): void {
    this.room(Buffer.byteLength(s) + 1);
    this.at += this.buf.write(s, this.at);
    this.buf[this.at++] = 10;
  }

  // the pieces of a line are a few bytes each: loops, where set(), copy() and write() cost
  // more in their calls than in their copying

  /** A literal (room made), four bytes a store. */
  ascii(lit: Literal): void {
    const { n, words } = lit;
    const at = this.at;
    if (n < 4) for (let k = 0; k < n; k++) this.buf[at + k] = lit.bytes[k]!;
    else {
      const view = this.view;
      const last = words.length - 1;
      for (let k = 0; k < last; k++) view.setInt32(at + 4 * k, words[k]!, true);
      view.setInt32(at + n - 4, words[last]!, true); // may overlap the word before it
    }
    this.at = at + n;
  }

  /** Bytes of the input (room made). */
  copy(from: Uint8Array, start: number, end: number): void {
    const buf = this.buf;
    let at = this.at;
    for (let k = start; k < end; k++) buf[at++] = from[k]!;
    this.at = at;
  }

  /** A whole number in decimal (room made). */
  int(v: number): void {
    const buf = this.buf;
    if (v < 0) {
      buf[this.at++] = 45;
      v = -v;
    }
    let digits = 1;
    for (let p = 10; p <= v; p *= 10) digits++;
    let at = this.at + digits;
    this.at = at;
    do {
      const q = Math.floor(v / 10);
      buf[--at] = 48 + (v - q * 10);
      v = q;
    } while (v > 0);
  }

  byte(b: number): void {
    this.buf[this.at++] = b;
  }
}

const viewOf = (b: Buffer): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** An ASCII literal of the output, with its little-endian words: at 0, 4, ..., and its last four bytes. */
class Literal {
  readonly bytes: Uint8Array;
  readonly n: number;
  readonly words: Int32Array;
  constructor(s: string) {
    const b = asciiBytes(s);
    const at: number[] = [];
    for (let k = 0; k + 4 < b.length; k += 4) at.push(k);
    if (b.length >= 4) at.push(b.length - 4);
    this.bytes = b;
    this.n = b.length;
    this.words = Int32Array.from(at, (k) => wordAt(b, k));
  }
}

const ALLOC_HEAD = new Literal('{"op":"alloc","id":"');
const FREE_HEAD = new Literal('{"op":"free","id":"');
const OUT_CHUNK = new Literal('","chunk":');
const OUT_RESERVED = new Literal('"reserved"');
const OUT_OFFSET = new Literal(',"offset":');
const OUT_FREE_TAIL = new Literal('"}\n');

/**
 * Replays the trace `read` gives, writing each output line into `out` (flushed at the end,
 * and before a BadInput or any other error leaves). `decode` turns the bytes of a line that
 * is not read here into its text (the trace's UTF-8 rules); a byte order mark is the caller's
 * to drop. Yields the number of the line it has come to every STEP lines, as replaySteps(),
 * and after each output block the writer could not take at once (so that it may wait for it).
 * Throws BadInput at the first bad line, after writing every earlier line. Options are
 * replayText()'s but for onStep, which needs every line as text: use replaySteps() for it.
 */
export function* replayBytes(
  read: ReadBytes,
  out: ByteLines,
  decode: (line: Buffer) => string,
  opts: Omit<ReplayOptions, 'onStep'> = {},
): Generator<number, ReplaySummary> {
  const ids = new IdTable();
  const r = new Replayer(opts, ids);
  const lines = new Lines(read);
  let blank = true; // only blank lines so far
  try {
    while (lines.next()) {
      const { buf, start, end, lineNo } = lines;
      // a block the writer still holds is a turn for the caller, whose writer may be behind
      if (lineNo % STEP === 0 || out.held) {
        out.held = false;
        yield lineNo;
      }
      // the alloc and free lines a trace is mostly made of are read here (flat-line.ts);
      // step() reads any other line, and says what is wrong with it
      const op = fastOp(buf, start, end);
      if (op === OP_ALLOC) {
        const res = r.allocAt(ids.keyOf(buf, flat.idStart, flat.idEnd), flat.size, flat.align, flat.reserved, lineNo);
        writeAlloc(out, buf, flat.idStart, flat.idEnd, res);
      } else if (op === OP_FREE) {
        r.freeAt(ids.keyOf(buf, flat.idStart, flat.idEnd), lineNo);
        writeFree(out, buf, flat.idStart, flat.idEnd);
      } else {
        const o = r.step(decode(buf.subarray(start, end)), lineNo);
        if (o === null) continue;
        out.text(o);
      }
      blank = false;
    }
    if (blank) throw new BadInput(1, EMPTY);
  } finally {
    out.flush();
  }
  return r.summary;
}

const EMPTY = 'the trace is empty: it must start with a "boot" line';

/** freeOutput()'s line, as bytes. */
function writeFree(out: ByteLines, buf: Uint8Array, idStart: number, idEnd: number): void {
  out.room(FREE_HEAD.n + (idEnd - idStart) + OUT_FREE_TAIL.n);
  out.ascii(FREE_HEAD);
  out.copy(buf, idStart, idEnd);
  out.ascii(OUT_FREE_TAIL);
}

/** The end of a failed allocation's line, per error: the allocator has a handful of reasons. */
const FAIL_TAILS = new Map<string, Literal>();

/** allocOutput()'s line, as bytes. */
function writeAlloc(out: ByteLines, buf: Uint8Array, idStart: number, idEnd: number, r: AllocResult): void {
  if (!r.ptr) {
    let tail = FAIL_TAILS.get(r.error!);
    if (!tail) FAIL_TAILS.set(r.error!, (tail = new Literal(`","chunk":null,"error":${JSON.stringify(r.error)}}\n`)));
    out.room(ALLOC_HEAD.n + (idEnd - idStart) + tail.n);
    out.ascii(ALLOC_HEAD);
    out.copy(buf, idStart, idEnd);
    out.ascii(tail);
    return;
  }
  out.room(ALLOC_HEAD.n + (idEnd - idStart) + 64);
  out.ascii(ALLOC_HEAD);
  out.copy(buf, idStart, idEnd);
  out.ascii(OUT_CHUNK);
  if (r.chunk!.id === RESERVED_CHUNK_ID) out.ascii(OUT_RESERVED);
  else out.int(r.chunk!.id);
  out.ascii(OUT_OFFSET);
  out.int(r.off);
  out.byte(125);
  out.byte(10);
}
