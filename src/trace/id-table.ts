/**
 * The ids of a replayed trace and what each stands for: a percpu pointer, 0 for an allocation
 * that failed, or FREED. Traces name their areas "a0", "a1", ...: such ids (one prefix, then a
 * number written without leading zeros) live in a dense table indexed by the number, which
 * costs an array access where a Map of strings costs a hash, a probe and a string compare.
 * Any other id goes to a Map. The same id always lands in the same place, and two different
 * ids never share one, so the table answers exactly as a Map of every id would. Either kind
 * has a key (key(); slotOf() finds a dense one from the id's bytes), so the replay handles
 * both the same way.
 */

/** The largest number an id may carry to live in the dense table (its size is 8 bytes each). */
const DENSE_LIMIT = 1 << 23;

export class IdTable {
  /** the place of each id the dense table does not take in otherValues and otherNames */
  private readonly others = new Map<string, number>();
  private readonly otherValues: number[] = [];
  private readonly otherNames: string[] = [];
  /** the prefix of the dense ids, fixed by the first id that has a number */
  private prefix: string | null = null;
  /** value + 2 per number: 0 is "never seen", so the values -1 (freed) and 0 (failed) fit */
  private dense = new Float64Array(1024);

  get(id: string): number | undefined {
    return this.getAt(this.key(id));
  }

  set(id: string, value: number): void {
    this.setAt(this.key(id), value);
  }

  /**
   * Where id lives, for getAt(), setAt() and idAt(): its dense index, or, for an id the Map
   * keeps, -1 minus its place there (given on first sight).
   */
  key(id: string): number {
    const i = this.slot(id);
    if (i >= 0) return i;
    let k = this.others.get(id);
    if (k === undefined) {
      k = this.otherNames.length;
      this.others.set(id, k);
      this.otherNames.push(id);
      this.otherValues.push(0);
    }
    return -1 - k;
  }

  /** What the id at `key` stands for, or undefined when it was never set. */
  getAt(key: number): number | undefined {
    const v = key < 0 ? this.otherValues[-1 - key]! : key < this.dense.length ? this.dense[key]! : 0;
    return v === 0 ? undefined : v - 2;
  }

  /** The id at `key`: for a dense index the prefix, then the index in decimal (the one spelling slot() takes). */
  idAt(key: number): string {
    return key < 0 ? this.otherNames[-1 - key]! : `${this.prefix}${key}`;
  }

  /**
   * The dense index of the id written as the bytes buf[start, end) (ASCII, as the byte reader
   * takes ids), or -1 when it belongs in the Map: slot() without making the string.
   */
  slotOf(buf: Uint8Array, start: number, end: number): number {
    const prefix = this.prefix;
    let i = end;
    while (i > start && buf[i - 1]! >= 48 && buf[i - 1]! <= 57) i--;
    const digits = end - i;
    if (prefix === null || digits === 0 || digits > 7 || (buf[i] === 48 && digits > 1)) return -1;
    if (i - start !== prefix.length) return -1;
    for (let k = 0; k < prefix.length; k++) if (buf[start + k] !== prefix.charCodeAt(k)) return -1;
    let v = 0;
    for (let k = i; k < end; k++) v = v * 10 + buf[k]! - 48;
    return v < DENSE_LIMIT ? v : -1;
  }

  setAt(key: number, value: number): void {
    if (key < 0) {
      this.otherValues[-1 - key] = value + 2;
      return;
    }
    const i = key;
    if (i >= this.dense.length) {
      let n = this.dense.length;
      while (n <= i) n *= 2;
      const grown = new Float64Array(Math.min(n, DENSE_LIMIT));
      grown.set(this.dense);
      this.dense = grown;
    }
    this.dense[i] = value + 2;
  }

  /** The dense index of an id, or -1 when it belongs in the Map. */
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
}
