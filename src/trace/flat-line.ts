/**
 * The two lines a trace is mostly made of, alloc and free, read from bytes as any JSON writer
 * prints them (spaces or none, keys in any order), without building a string of the line or
 * an object. Anything else is left to JSON.parse and Replayer.step(), which say what is wrong.
 */

/** A string of ASCII characters as its bytes. */
export const asciiBytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** The four bytes b[k, k + 4) as a little-endian word, as DataView.getInt32(k, true) reads them. */
export const wordAt = (b: Uint8Array, k: number): number =>
  b[k]! | (b[k + 1]! << 8) | (b[k + 2]! << 16) | (b[k + 3]! << 24);

/** The bytes an id may hold on the fast path: [A-Za-z0-9_.:/+-], the characters JSON writes as they are. */
const ID_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/+-') ID_BYTE[c.charCodeAt(0)] = 1;

export const OP_ALLOC = 1;
export const OP_FREE = 2;
// the keys, as bits of `flat.seen`
const K_OP = 1;
const K_ID = 2;
const K_SIZE = 4;
const K_ALIGN = 8;
const K_RESERVED = 16;

/**
 * A literal of 4 to 16 bytes, compared as little-endian words: at 0, 4 and 8 as far as they
 * fit, and at its last four bytes (the words may overlap).
 */
class Lit {
  readonly n: number;
  readonly w0: number;
  readonly w4: number;
  readonly w8: number;
  readonly last: number;
  constructor(s: string) {
    const b = asciiBytes(s);
    if (b.length < 4 || b.length > 16) throw new Error(`Lit: ${s} is not 4 to 16 bytes`);
    this.n = b.length;
    this.w0 = wordAt(b, 0);
    this.w4 = wordAt(b, Math.min(4, b.length - 4));
    this.w8 = wordAt(b, Math.min(8, b.length - 4));
    this.last = wordAt(b, b.length - 4);
  }
}

/** The keys readFlat() reads, quoted, by first letter (no two share one), and their bits. */
const KEY_BIT = new Uint8Array(128);
const KEY_LIT: Lit[] = [];
for (const [bit, name] of [
  [K_OP, 'op'],
  [K_ID, 'id'],
  [K_SIZE, 'size'],
  [K_ALIGN, 'align'],
  [K_RESERVED, 'reserved'],
] as const) {
  KEY_BIT[name.charCodeAt(0)] = bit;
  KEY_LIT[bit] = new Lit(`"${name}"`);
}
const ALLOC_START = new Lit('{"op":"alloc",');
const FREE_START = new Lit('{"op":"free",');
const VAL_ALLOC = new Lit('"alloc"');
const VAL_FREE = new Lit('"free"');
const VAL_TRUE = new Lit('true');
const VAL_FALSE = new Lit('false');

/** What readFlat() read of a line: which keys, and their values. */
export const flat = { op: 0, seen: 0, idStart: 0, idEnd: 0, size: 0, align: 0, reserved: false };

/** Past JSON's whitespace (space, tab, carriage return, line feed) from p. */
function skipWs(buf: Uint8Array, p: number, end: number): number {
  while (p < end) {
    const c = buf[p]!;
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) break;
    p++;
  }
  return p;
}

/** The line's buffer as a DataView, for reading words; made again when the buffer changes. */
let viewed: Uint8Array | null = null;
let view: DataView = new DataView(new ArrayBuffer(0));

/** Past `l` at p, or -1 when it is not there (or would end past `end`). */
function past(p: number, end: number, l: Lit): number {
  const n = l.n;
  if (p + n > end) return -1;
  const v = view;
  if (v.getInt32(p, true) !== l.w0 || v.getInt32(p + n - 4, true) !== l.last) return -1;
  if (n > 8 && v.getInt32(p + 4, true) !== l.w4) return -1;
  if (n > 12 && v.getInt32(p + 8, true) !== l.w8) return -1;
  return p + n;
}

/**
 * Reads buf[start, end) into `flat` when it is an object of the keys op, id, size, align and
 * reserved, none twice, with values of the fast shapes ("op" alloc or free); false otherwise.
 * Every read is of an index under `end`: the buffer goes on past the line.
 */
function readFlat(buf: Uint8Array, start: number, end: number): boolean {
  if (buf !== viewed) {
    viewed = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  let p = skipWs(buf, start, end);
  if (p >= end || buf[p] !== 123) return false;
  flat.seen = 0;
  flat.reserved = false;
  // the starts writers print, read at once; p is left on the comma
  let q = past(p, end, ALLOC_START);
  if (q >= 0) {
    flat.op = OP_ALLOC;
    flat.seen = K_OP;
    p = q - 1;
  } else if ((q = past(p, end, FREE_START)) >= 0) {
    flat.op = OP_FREE;
    flat.seen = K_OP;
    p = q - 1;
  }
  for (;;) {
    p = skipWs(buf, p + 1, end);
    // the key, told by its first letter
    const key = p + 1 < end && buf[p + 1]! < 128 ? KEY_BIT[buf[p + 1]!]! : 0;
    if (key === 0) return false;
    p = past(p, end, KEY_LIT[key]!);
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
      if ((q = past(p, end, VAL_ALLOC)) >= 0) flat.op = OP_ALLOC;
      else if ((q = past(p, end, VAL_FREE)) >= 0) flat.op = OP_FREE;
      else return false;
      p = q;
    } else if ((q = past(p, end, VAL_TRUE)) >= 0) {
      flat.reserved = true;
      p = q;
    } else if ((q = past(p, end, VAL_FALSE)) >= 0) p = q;
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
function intAt(buf: Uint8Array, p: number, end: number): number {
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

/**
 * The op of buf[start, end) when it is an alloc or free line the fast path answers: one
 * readFlat() takes, with every key its op needs and no other. Its fields are then in `flat`.
 * 0 for any other line.
 */
export function fastOp(buf: Uint8Array, start: number, end: number): number {
  if (!readFlat(buf, start, end)) return 0;
  if (flat.op === OP_FREE) return flat.seen === (K_OP | K_ID) ? OP_FREE : 0;
  return (flat.seen & ~K_RESERVED) === (K_OP | K_ID | K_SIZE | K_ALIGN) ? OP_ALLOC : 0;
}
