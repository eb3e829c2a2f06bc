/**
 * The two lines a trace is mostly made of, alloc and free, read from bytes as any JSON writer
 * prints them (spaces or none, keys in any order), without building a string of the line or
 * an object. Anything else is left to JSON.parse and Replayer.step(), which say what is wrong.
 */

/** A string of ASCII characters as its bytes. */
export const asciiBytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** The bytes an id may hold on the fast path: [A-Za-z0-9_.:/+-], the characters JSON writes as they are. */
const ID_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/+-') ID_BYTE[c.charCodeAt(0)] = 1;

function startsWith(buf: Uint8Array, at: number, end: number, lit: Uint8Array): boolean {
  if (end - at < lit.length) return false;
  for (let k = 0; k < lit.length; k++) if (buf[at + k] !== lit[k]) return false;
  return true;
}

export const OP_ALLOC = 1;
export const OP_FREE = 2;
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
  KEY_BY_LETTER[name.charCodeAt(0)] = [bit, asciiBytes(name)];
const ALLOC_START = asciiBytes('{"op":"alloc",');
const FREE_START = asciiBytes('{"op":"free",');
const VAL_ALLOC = asciiBytes('alloc');
const VAL_FREE = asciiBytes('free');
const VAL_TRUE = asciiBytes('true');
const VAL_FALSE = asciiBytes('false');

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

/** Past the quoted literal `lit` ("lit") at p, or -1 when it is not there. */
function quoted(buf: Uint8Array, p: number, end: number, lit: Uint8Array): number {
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
function readFlat(buf: Uint8Array, start: number, end: number): boolean {
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
