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
import { BadInput, Replayer, type ReplayOptions, type ReplaySummary } from './replay.ts';

/** Fills `into` from `at` on; returns how many bytes it read, 0 at the end of the trace. */
export type ReadBytes = (into: Buffer, at: number) => number;

const OUT_BLOCK = 1 << 18;

/** Output lines gathered into blocks; each block goes to `write` whole, and is not touched again. */
export class ByteLines {
  private buf = Buffer.allocUnsafe(OUT_BLOCK);
  private at = 0;

  constructor(private readonly write: (block: Buffer) => void) {}

  /** Room for `n` more bytes. */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }

  /** Writes the blocks gathered so far. */
  flush(): void {
    if (!this.at) return;
    this.write(this.buf.subarray(0, this.at));
    this.buf = Buffer.allocUnsafe(Math.max(OUT_BLOCK, this.buf.length));
    this.at = 0;
  }

  /** A line given as text, and its newline. */
  text(s: string): void {
    this.room(Buffer.byteLength(s) + 1);
    this.at += this.buf.write(s, this.at);
    this.buf[this.at++] = 10;
  }

  // the pieces of a line are a few bytes each: byte loops, where set(), copy() and write()
  // cost more in their calls than in their copying

  /** ASCII bytes (room made). */
  ascii(lit: Uint8Array): void {
    const buf = this.buf;
    let at = this.at;
    for (let k = 0; k < lit.length; k++) buf[at++] = lit[k]!;
    this.at = at;
  }

  /** Bytes of the input (room made). */
  copy(from: Buffer, start: number, end: number): void {
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

const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const ALLOC_HEAD = bytes('{"op":"alloc","id":"');
const FREE_HEAD = bytes('{"op":"free","id":"');
const OUT_CHUNK = bytes('","chunk":');
const OUT_RESERVED = bytes('"reserved"');
const OUT_OFFSET = bytes(',"offset":');
const OUT_FREE_TAIL = bytes('"}\n');

/** The bytes an id may hold on the fast path: [A-Za-z0-9_.:/+-], the characters JSON writes as they are. */
const ID_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/+-') ID_BYTE[c.charCodeAt(0)] = 1;

function startsWith(buf: Buffer, at: number, end: number, lit: Uint8Array): boolean {
  if (end - at < lit.length) return false;
  for (let k = 0; k < lit.length; k++) if (buf[at + k] !== lit[k]) return false;
  return true;
}

/**
 * Replays the trace `read` gives, writing each output line into `out` (flushed at the end,
 * and before a BadInput or any other error leaves). `decode` turns the bytes of a line that
 * is not read here into its text (the trace's UTF-8 rules); a byte order mark is the caller's
 * to drop. Yields the number of the line it has come to every STEP lines, as replaySteps().
 * Throws BadInput at the first bad line, after writing every earlier line. Options are
 * replayText()'s but for onStep, which needs every line as text: use replaySteps() for it.
 */
export function* replayBytes(
  read: ReadBytes,
  out: ByteLines,
  decode: (line: Buffer) => string,
  opts: Omit<ReplayOptions, 'onStep'> = {},
): Generator<number, ReplaySummary> {
  const r = new Replayer(opts);
  let buf = Buffer.allocUnsafe(1 << 20);
  let have = 0; // bytes in buf
  let start = 0; // where the next line starts
  let eof = false;
  let lineNo = 0;
  let blank = true; // only blank lines so far
  try {
    for (;;) {
      let nl = start < have ? buf.indexOf(10, start) : -1;
      if (nl < 0 || nl >= have) {
        if (!eof) {
          // keep the unfinished line, read more behind it
          if (start > 0) {
            buf.copy(buf, 0, start, have);
            have -= start;
            start = 0;
          }
          if (have === buf.length) {
            const grown = Buffer.allocUnsafe(buf.length * 2);
            buf.copy(grown, 0, 0, have);
            buf = grown;
          }
          const n = read(buf, have);
          if (n > 0) have += n;
          else eof = true;
          continue;
        }
        if (start >= have) break;
        nl = have; // the last line has no newline
      }
      lineNo++;
      if (lineNo % STEP === 0) yield lineNo;
      let end = nl;
      if (end > start && buf[end - 1] === 13) end--;
      if (!fastLine(r, buf, start, end, lineNo, out)) {
        const o = r.step(decode(buf.subarray(start, end)), lineNo);
        if (o !== null) {
          blank = false;
          out.text(o);
        }
      } else blank = false;
      start = nl + 1;
    }
    if (blank) throw new BadInput(1, 'the trace is empty: it must start with a "boot" line');
  } finally {
    out.flush();
  }
  return r.summary;
}

/**
 * Reads and applies the line buf[start, end) when it is an alloc or free line that needs
 * nothing of JSON.parse's: a flat object of the keys its op takes, each once, in any order,
 * with JSON's whitespace anywhere between tokens; an id of the bytes JSON writes as they are
 * (ID_BYTE); integers as writers print them (intAt()). Returns false, having changed
 * nothing, for any other line: step() reads it, and says what is wrong with it.
 */
function fastLine(r: Replayer, buf: Buffer, start: number, end: number, lineNo: number, out: ByteLines): boolean {
  if (!readFlat(buf, start, end)) return false;
  const idStart = flat.idStart;
  const idEnd = flat.idEnd;
  if (flat.op === OP_FREE) {
    if (flat.seen !== (K_OP | K_ID)) return false;
    r.freeAt(r.keyOf(buf, idStart, idEnd), lineNo);
    out.room(FREE_HEAD.length + (idEnd - idStart) + 3);
    out.ascii(FREE_HEAD);
    out.copy(buf, idStart, idEnd);
    out.ascii(OUT_FREE_TAIL);
    return true;
  }
  if ((flat.seen & ~K_RESERVED) !== (K_OP | K_ID | K_SIZE | K_ALIGN)) return false;
  const res = r.allocAt(r.keyOf(buf, idStart, idEnd), flat.size, flat.align, flat.reserved, lineNo);
  writeAlloc(out, buf, idStart, idEnd, res);
  return true;
}

const OP_ALLOC = 1;
const OP_FREE = 2;
// the keys, as bits of `flat.seen`
const K_OP = 1;
const K_ID = 2;
const K_SIZE = 4;
const K_ALIGN = 8;
const K_RESERVED = 16;
/** The keys readFlat() reads, by first letter (no two share one): their bit, and their name. */
const KEY_BY_LETTER: ([number, Uint8Array] | undefined)[] = [];
for (const [bit, name] of [
  [K_OP, 'op'],
  [K_ID, 'id'],
  [K_SIZE, 'size'],
  [K_ALIGN, 'align'],
  [K_RESERVED, 'reserved'],
] as const)
  KEY_BY_LETTER[name.charCodeAt(0)] = [bit, bytes(name)];
const ALLOC_START = bytes('{"op":"alloc",');
const FREE_START = bytes('{"op":"free",');
const VAL_ALLOC = bytes('alloc');
const VAL_FREE = bytes('free');
const VAL_TRUE = bytes('true');
const VAL_FALSE = bytes('false');

/** What readFlat() read of a line: which keys, and their values. */
const flat = { op: 0, seen: 0, idStart: 0, idEnd: 0, size: 0, align: 0, reserved: false };

/** Past JSON's whitespace (space, tab, carriage return, line feed) from p. */
function skipWs(buf: Buffer, p: number, end: number): number {
  while (p < end) {
    const c = buf[p]!;
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) break;
    p++;
  }
  return p;
}

/** Past the quoted literal `lit` ("lit") at p, or -1 when it is not there. */
function quoted(buf: Buffer, p: number, end: number, lit: Uint8Array): number {
  const n = lit.length;
  if (p + n + 2 > end || buf[p] !== 34 || buf[p + n + 1] !== 34) return -1;
  for (let k = 0; k < n; k++) if (buf[p + 1 + k] !== lit[k]) return -1;
  return p + n + 2;
}

/**
 * Reads buf[start, end) into `flat` when it is an object of the keys op, id, size, align and
 * reserved, none twice, with values of the fast shapes ("op" alloc or free); false otherwise.
 * Every read is of an index under `end`: the buffer goes on past the line.
 */
function readFlat(buf: Buffer, start: number, end: number): boolean {
  let p = skipWs(buf, start, end);
  if (p >= end || buf[p] !== 123) return false;
  flat.seen = 0;
  flat.reserved = false;
  // the start writers print, read at once; p is left on its comma
  if (startsWith(buf, p, end, ALLOC_START)) {
    flat.op = OP_ALLOC;
    flat.seen = K_OP;
    p += ALLOC_START.length - 1;
  } else if (startsWith(buf, p, end, FREE_START)) {
    flat.op = OP_FREE;
    flat.seen = K_OP;
    p += FREE_START.length - 1;
  }
  for (;;) {
    p = skipWs(buf, p + 1, end);
    // the key, told by its first letter
    const known = p + 1 < end ? KEY_BY_LETTER[buf[p + 1]!] : undefined;
    if (!known) return false;
    const key = known[0];
    p = quoted(buf, p, end, known[1]);
    if (p < 0 || flat.seen & key) return false; // a key twice: JSON.parse keeps the last, and step() will
    flat.seen |= key;
    p = skipWs(buf, p, end);
    if (p >= end || buf[p] !== 58) return false;
    p = skipWs(buf, p + 1, end);
    if (key === K_ID) {
      if (p >= end || buf[p] !== 34) return false;
      flat.idStart = ++p;
      while (p < end && ID_BYTE[buf[p]!]) p++;
      if (p >= end || buf[p] !== 34) return false;
      flat.idEnd = p++;
    } else if (key === K_SIZE || key === K_ALIGN) {
      const v = intAt(buf, p, end);
      if (v < 0) return false;
      if (key === K_SIZE) flat.size = v;
      else flat.align = v;
      p = intEnd;
    } else if (key === K_OP) {
      let q = quoted(buf, p, end, VAL_ALLOC);
      flat.op = OP_ALLOC;
      if (q < 0) {
        q = quoted(buf, p, end, VAL_FREE);
        flat.op = OP_FREE;
      }
      if (q < 0) return false;
      p = q;
    } else if (startsWith(buf, p, end, VAL_TRUE)) {
      flat.reserved = true;
      p += VAL_TRUE.length;
    } else if (startsWith(buf, p, end, VAL_FALSE)) p += VAL_FALSE.length;
    else return false;
    p = skipWs(buf, p, end);
    if (p >= end) return false;
    if (buf[p] === 44) continue;
    if (buf[p] !== 125) return false;
    return skipWs(buf, p + 1, end) === end && (flat.seen & K_OP) !== 0;
  }
}

/** Where the number intAt() read ends. */
let intEnd = 0;

/** A JSON integer as writers print them (no sign, no leading zero, at most 15 digits) at buf[p]; -1 when there is none. */
function intAt(buf: Buffer, p: number, end: number): number {
  const first = p;
  let v = 0;
  while (p < end) {
    const c = buf[p]!;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
    p++;
  }
  const n = p - first;
  if (n === 0 || n > 15 || (n > 1 && buf[first] === 48)) return -1;
  intEnd = p;
  return v;
}

/** The end of a failed allocation's line, per error: the allocator has a handful of reasons. */
const FAIL_TAILS = new Map<string, Uint8Array>();

/** allocOutput()'s line, as bytes. */
function writeAlloc(out: ByteLines, buf: Buffer, idStart: number, idEnd: number, r: AllocResult): void {
  if (!r.ptr) {
    let tail = FAIL_TAILS.get(r.error!);
    // a plain Uint8Array, as every literal ascii() copies is: one kind keeps its loop monomorphic
    if (!tail)
      FAIL_TAILS.set(
        r.error!,
        (tail = new Uint8Array(Buffer.from(`","chunk":null,"error":${JSON.stringify(r.error)}}\n`))),
      );
    out.room(ALLOC_HEAD.length + (idEnd - idStart) + tail.length);
    out.ascii(ALLOC_HEAD);
    out.copy(buf, idStart, idEnd);
    out.ascii(tail);
    return;
  }
  out.room(ALLOC_HEAD.length + (idEnd - idStart) + 64);
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
