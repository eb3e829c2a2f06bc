/**
 * The ids of a replayed trace. An IdTable gives each id a key, the same one every time the
 * id comes back, and two different ids never the same one; IdValues keeps what each key
 * stands for (a percpu pointer, 0 for an allocation that failed, or FREED), in arrays indexed
 * by key. A key never moves, however many ids come after it.
 *
 * Traces often name their areas "a0", "a1", ...: such ids (one prefix, then a number written
 * without leading zeros) are keyed by the number, which costs no lookup. Any other id gets the
 * next ordinal on first sight, found again through an open-addressing hash table whose slot
 * holds where the id's bytes are and their hash, so a lookup costs the slot and one compare;
 * the replay's byte reader probes it with the id's bytes, and no id becomes a string on the
 * way. Either kind of id has a key (key() from a string, keyOf() from bytes), so the replay
 * handles both the same way.
 */

/** The largest number an id may carry to be keyed by it (the values of such keys cost 8 bytes each up to there). */
const DENSE_LIMIT = 1 << 23;

const FNV_OFFSET = 0x811c9dc5 | 0; // as Math.imul() gives it, and an Int32Array keeps it
const FNV_PRIME = 0x01000193;
/** words per slot of the hash table: [where the id's entry starts + 1 (0: empty), its hash] */
const SLOT = 2;

export class IdTable {
  /** the prefix of the dense ids, fixed by the first id that has a number */
  private prefix: string | null = null;

  // The other ids: each has an entry in `bytes`, in the order they came: its length (LEB128),
  // its bytes, then its ordinal (4 bytes, little-endian). The hash in the slot spares a probe
  // most compares, and a rehash every byte.
  private table = new Int32Array(512 * SLOT);
  /** ids in the table: the next one's ordinal */
  private others = 0;
  private bytes = new Uint8Array(4096);
  private bytesUsed = 0;
  /** key()'s copy of a string id's bytes */
  private scratch = new Uint8Array(64);

  /**
   * The key of `id`: its number for a dense id (0 and up), or -1 minus its ordinal for any
   * other (given on first sight). It is the same for as long as the table lives.
   */
  key(id: string): number {
    const i = this.slot(id);
    if (i >= 0) return i;
    if (3 * id.length > this.scratch.length) this.scratch = new Uint8Array(6 * id.length);
    return this.other(this.scratch, 0, idBytes(id, this.scratch));
  }

  /**
   * key() of the id written as the bytes buf[start, end), ASCII as the byte reader takes ids,
   * without making the string.
   */
  keyOf(buf: Uint8Array, start: number, end: number): number {
    const i = this.slotOf(buf, start, end);
    return i >= 0 ? i : this.other(buf, start, end);
  }

  /** The id at `key`: for a dense key the prefix, then the number in decimal (the one spelling slot() takes). */
  idAt(key: number): string {
    if (key >= 0) return `${this.prefix}${key}`;
    // entries are in ordinal order: walk to this one (a message's cost, not a lookup's)
    let at = 0;
    for (let ordinal = 0; ; ordinal++) {
      const len = this.lengthAt(at);
      if (ordinal === -1 - key) return idString(this.bytes, this.after, this.after + len);
      at = this.after + len + 4;
    }
  }

  /**
   * The key of the id that is not a dense one and is written as the bytes id[start, end) (see
   * idBytes()): found in the hash table, or given the next ordinal on first sight.
   */
  private other(id: Uint8Array, start: number, end: number): number {
    let h = FNV_OFFSET;
    for (let k = start; k < end; k++) h = Math.imul(h ^ id[k]!, FNV_PRIME);
    const s = this.find(h, id, start, end);
    if (s < 0) return s; // found: find() gave its key
    // at most half full, so that a probe for an id not there ends soon
    if (2 * (this.others + 1) > this.table.length / SLOT) {
      this.rehash();
      return this.other(id, start, end);
    }
    const len = end - start;
    if (this.bytesUsed + len + 9 > this.bytes.length) {
      const grown = new Uint8Array(Math.max(2 * this.bytes.length, this.bytesUsed + len + 9));
      grown.set(this.bytes);
      this.bytes = grown;
    }
    const bytes = this.bytes;
    const w = s * SLOT;
    this.table[w] = this.bytesUsed + 1;
    this.table[w + 1] = h;
    let at = this.bytesUsed;
    let n = len;
    for (; n >= 0x80; n >>>= 7) bytes[at++] = 0x80 | (n & 0x7f);
    bytes[at++] = n;
    for (let k = start; k < end; k++) bytes[at++] = id[k]!;
    const ordinal = this.others++;
    bytes[at] = ordinal;
    bytes[at + 1] = ordinal >>> 8;
    bytes[at + 2] = ordinal >>> 16;
    bytes[at + 3] = ordinal >>> 24;
    this.bytesUsed = at + 4;
    return -1 - ordinal;
  }

  /**
   * For the id of hash h written as id[start, end): its key when the table holds it (a
   * negative number), or the empty slot where it would go (0 and up).
   */
  private find(h: number, id: Uint8Array, start: number, end: number): number {
    const table = this.table;
    const mask = table.length / SLOT - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const w = s * SLOT;
      if (table[w] === 0) return s;
      if (table[w + 1] !== h || this.lengthAt(table[w]! - 1) !== end - start) continue;
      const bytes = this.bytes;
      let at = this.after;
      let k = start;
      while (k < end && bytes[at] === id[k]) {
        at++;
        k++;
      }
      if (k === end) return -1 - (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24));
    }
  }

  /** where the last lengthAt() found the id's bytes to start */
  private after = 0;

  /** The length written at bytes[at]; sets `after`. */
  private lengthAt(at: number): number {
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.bytes[at++]!;
      len |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    this.after = at;
    return len;
  }

  private rehash(): void {
    const old = this.table;
    const table = new Int32Array(old.length * 2);
    const mask = table.length / SLOT - 1;
    for (let w = 0; w < old.length; w += SLOT) {
      if (old[w] === 0) continue;
      let s = old[w + 1]! & mask;
      while (table[s * SLOT] !== 0) s = (s + 1) & mask;
      table[s * SLOT] = old[w]!;
      table[s * SLOT + 1] = old[w + 1]!;
    }
    this.table = table;
  }

  /** The dense index of an id, or -1 when it is not a dense one. */
  private slot(id: string): number {
    const n = id.length;
    let i = n;
    while (i > 0) {
      const c = id.charCodeAt(i - 1);
      if (c < 48 || c > 57) break;
      i--;
    }
    // no number, one too long to be small, or a leading zero (a spelling of its own)
    if (i === n || n - i > 7 || (id.charCodeAt(i) === 48 && n - i > 1)) return -1;
    if (this.prefix === null) this.prefix = id.slice(0, i);
    else if (i !== this.prefix.length || !id.startsWith(this.prefix)) return -1;
    let v = 0;
    for (let k = i; k < n; k++) v = v * 10 + id.charCodeAt(k) - 48;
    return v < DENSE_LIMIT ? v : -1;
  }

  /** slot() of the id written as the bytes buf[start, end), without making the string. */
  private slotOf(buf: Uint8Array, start: number, end: number): number {
    let i = end;
    while (i > start && buf[i - 1]! >= 48 && buf[i - 1]! <= 57) i--;
    const digits = end - i;
    if (digits === 0 || digits > 7 || (buf[i] === 48 && digits > 1)) return -1;
    let prefix = this.prefix;
    if (prefix === null) {
      prefix = '';
      for (let k = start; k < i; k++) prefix += String.fromCharCode(buf[k]!);
      this.prefix = prefix;
    } else {
      if (i - start !== prefix.length) return -1;
      for (let k = 0; k < prefix.length; k++) if (buf[start + k] !== prefix.charCodeAt(k)) return -1;
    }
    let v = 0;
    for (let k = i; k < end; k++) v = v * 10 + buf[k]! - 48;
    return v < DENSE_LIMIT ? v : -1;
  }
}

/**
 * What each key of an IdTable stands for: a number (a percpu pointer, 0, or -1 for freed), or
 * undefined for a key never set.
 */
export class IdValues {
  /** value + 2 per dense key, then per ordinal: 0 is "never set", so the values -1 and 0 fit */
  private dense = new Float64Array(1024);
  private other = new Float64Array(1024);

  getAt(key: number): number | undefined {
    let v: number;
    if (key >= 0) v = key < this.dense.length ? this.dense[key]! : 0;
    else {
      const i = -1 - key;
      v = i < this.other.length ? this.other[i]! : 0;
    }
    return v === 0 ? undefined : v - 2;
  }

  setAt(key: number, value: number): void {
    if (key >= 0) {
      if (key >= this.dense.length) this.dense = grown(this.dense, key);
      this.dense[key] = value + 2;
    } else {
      const i = -1 - key;
      if (i >= this.other.length) this.other = grown(this.other, i);
      this.other[i] = value + 2;
    }
  }
}

/** `a` copied into an array twice as long, or longer, that has room at index i. */
function grown(a: Float64Array<ArrayBuffer>, i: number): Float64Array<ArrayBuffer> {
  let n = a.length;
  while (n <= i) n *= 2;
  const b = new Float64Array(n);
  b.set(a);
  return b;
}

/**
 * Writes a string id as bytes into `into` (room for three per code unit) and returns how many:
 * a code unit below 0x80 as itself, so an ASCII id is its own bytes, and any other as three
 * bytes of 0x80 and up, so no two ids share a spelling, lone surrogates included.
 */
function idBytes(id: string, into: Uint8Array): number {
  let n = 0;
  for (let k = 0; k < id.length; k++) {
    const c = id.charCodeAt(k);
    if (c < 0x80) into[n++] = c;
    else {
      into[n++] = 0x80 | (c >> 14);
      into[n++] = 0x80 | ((c >> 7) & 0x7f);
      into[n++] = 0x80 | (c & 0x7f);
    }
  }
  return n;
}

/** The string idBytes() wrote as bytes[start, end). */
function idString(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let k = start; k < end; k++) {
    const b = bytes[k]!;
    if (b < 0x80) s += String.fromCharCode(b);
    else {
      s += String.fromCharCode(((b & 0x7f) << 14) | ((bytes[k + 1]! & 0x7f) << 7) | (bytes[k + 2]! & 0x7f));
      k += 2;
    }
  }
  return s;
}
