/** The replay's id table answers exactly as a Map of every id would, whatever the ids look like. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdTable, IdValues } from '../../src/trace/id-table.ts';

/** An IdTable with the values of its keys beside it, as the replay keeps them. */
class Table {
  private readonly ids = new IdTable();
  private readonly values = new IdValues();
  key = (id: string): number => this.ids.key(id);
  keyOf = (buf: Uint8Array, start: number, end: number): number => this.ids.keyOf(buf, start, end);
  idAt = (key: number): string => this.ids.idAt(key);
  getAt = (key: number): number | undefined => this.values.getAt(key);
  setAt = (key: number, value: number): void => this.values.setAt(key, value);
  get = (id: string): number | undefined => this.getAt(this.key(id));
  set = (id: string, value: number): void => this.setAt(this.key(id), value);
}

describe('IdTable', () => {
  it('keeps spellings apart: a leading zero, another prefix, no number, a long number', () => {
    const t = new Table();
    const ids = [
      'a1',
      'a01',
      'b1',
      'a',
      '1',
      'a0',
      'a00',
      'a9999999',
      'a99999999',
      'a8388608',
      'a8388607',
      'é1',
      'a1 ',
      '\ud800x',
      '\ufffdx',
      '\u0080',
      '\u00c0\u0000',
    ];
    ids.forEach((id, i) => t.set(id, i * 1000));
    ids.forEach((id, i) => expect(t.get(id)).toBe(i * 1000));
    // a key spells its id back, whatever code units the id has
    ids.forEach((id) => expect(t.idAt(t.key(id))).toBe(id));
    expect(t.get('a2')).toBeUndefined();
    expect(t.get('b2')).toBeUndefined();
    // the values the replay stores: a pointer, 0 for a failed allocation, -1 for freed
    t.set('a5', 0);
    t.set('a6', -1);
    t.set('a7', 2 ** 44 + 16);
    expect([t.get('a5'), t.get('a6'), t.get('a7')]).toEqual([0, -1, 2 ** 44 + 16]);
  });

  it("finds from an id's bytes the key its string has, and spells it back", () => {
    const id = fc.oneof(
      fc.nat({ max: 9_999_999 }).map((n) => `a${n}`),
      fc.nat({ max: 99 }).map((n) => `a0${n}`),
      fc.nat({ max: 99 }).map((n) => `ab${n}`),
      fc.nat({ max: 99 }).map((n) => `${n}`),
      fc.stringMatching(/^[a-z0-9]{0,4}$/),
      fc.stringMatching(/^[A-Za-z0-9_.:/+-]{1,24}$/),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), id), { minLength: 1, maxLength: 400 }), (ids) => {
        const t = new Table();
        const m = new Map<string, number>();
        ids.forEach(([bytes, k], n) => {
          // either reader may meet an id first: the other must find the same key
          const b = Buffer.from(` ${k} `, 'latin1');
          const key = bytes ? t.keyOf(b, 1, b.length - 1) : t.key(k);
          expect(bytes ? t.key(k) : t.keyOf(b, 1, b.length - 1)).toBe(key);
          expect(t.idAt(key)).toBe(k);
          expect(t.getAt(key)).toBe(m.get(k));
          t.setAt(key, n + 1);
          m.set(k, n + 1);
          expect(t.get(k)).toBe(n + 1);
        });
        for (const [k, v] of m) expect(t.get(k)).toBe(v);
      }),
      { seed: 20261201, numRuns: 300 },
    );
  });

  it('keeps ids whose hashes collide apart, through every growth of the table', () => {
    const t = new Table();
    // enough ids of the Map's kind to grow the hash table and the unit store several times
    const ids = Array.from({ length: 5000 }, (_, n) => `id-${n.toString(36)}-x`);
    ids.forEach((k, n) => {
      const b = Buffer.from(k, 'latin1');
      t.setAt(n % 2 ? t.keyOf(b, 0, b.length) : t.key(k), n);
    });
    ids.forEach((k, n) => expect(t.get(k)).toBe(n));
    const key = t.keyOf(Buffer.from('id-0-x'), 0, 6);
    expect(key).toBeLessThan(0);
    expect([t.idAt(key), t.getAt(key)]).toEqual(['id-0-x', 0]);
    expect(t.get('id-zz-y')).toBeUndefined();
  });

  it('gives an id the key it had, however many ids came after it', () => {
    const t = new Table();
    const first = ['a7', 'f-x', 'zz', '\u00e9'].map((k) => t.key(k));
    // enough ids to grow the hash table and the store of their bytes many times over
    for (let n = 0; n < 20000; n++) t.key(`g-${n}`);
    expect(['a7', 'f-x', 'zz', '\u00e9'].map((k) => t.key(k))).toEqual(first);
    // a numbered id's key is its number; the others' are ordinals in the order they came: -1, -2, ...
    expect(first).toEqual([7, -1, -2, -3]);
    expect(t.key('g-0')).toBe(-4);
    expect(t.idAt(-4)).toBe('g-0');
    expect(t.idAt(-20003)).toBe('g-19999');
  });

  it('keeps ordinals whole past 2^16 ids, and a numbered id past the dense limit the same from bytes or string', () => {
    const t = new Table();
    const n = 70_000; // an ordinal of three bytes and more
    for (let k = 0; k < n; k++) expect(t.key(`h${k}x`)).toBe(-1 - k);
    for (const k of [0, 255, 256, 65_535, 65_536, 69_999]) {
      const b = Buffer.from(`h${k}x`);
      expect(t.keyOf(b, 0, b.length)).toBe(-1 - k);
      expect(t.idAt(-1 - k)).toBe(`h${k}x`);
    }
    // the first numbered id fixes the prefix; 2^23 and up are spelt as any other id
    const u = new Table();
    for (const id of ['a1', 'a8388607', 'a8388608', 'a99999999']) {
      const b = Buffer.from(id);
      expect(u.keyOf(b, 0, b.length), id).toBe(u.key(id));
      expect(u.idAt(u.key(id))).toBe(id);
    }
    expect(u.key('a8388607')).toBe(8388607);
    expect(u.key('a8388608')).toBeLessThan(0);
  });

  it('tells apart ids of the same hash and length, and long ids whose length takes two bytes or more', () => {
    const t = new Table();
    // FNV-1a (32 bits) gives these two the same hash: only their bytes tell them apart
    const same = ['kmtzx', 'k31cd'];
    const long = [127, 128, 129, 300, 16384].map((n) => 'k'.repeat(n));
    const wide = ['é'.repeat(30) + 'a', '\u4e2d'.repeat(200)];
    // the wide ones first, while key()'s scratch is still its first size
    const ids = [...wide, ...same, ...long, ...long.map((k) => k + 'x')];
    ids.forEach((k, n) => {
      const b = Buffer.from(k, 'latin1');
      t.setAt(n % 2 && /^[\x00-\x7f]*$/.test(k) ? t.keyOf(b, 0, b.length) : t.key(k), n);
    });
    ids.forEach((k, n) => {
      expect(t.get(k), k.slice(0, 8)).toBe(n);
      expect(t.idAt(t.key(k))).toBe(k);
      if (/^[\x00-\x7f]*$/.test(k)) expect(t.keyOf(Buffer.from(k), 0, k.length)).toBe(t.key(k));
    });
    expect(new Set(ids.map((k) => t.key(k))).size).toBe(ids.length);
  });

  it('keeps values by key apart from the table: dense keys and ordinals, each grown as needed', () => {
    const v = new IdValues();
    expect(v.getAt(0)).toBeUndefined();
    expect(v.getAt(-1)).toBeUndefined();
    v.setAt(5_000_000, 2 ** 44 + 8);
    v.setAt(-1 - 70_000, 0);
    v.setAt(3, -1);
    expect([v.getAt(5_000_000), v.getAt(-1 - 70_000), v.getAt(3), v.getAt(4), v.getAt(-2)]).toEqual([
      2 ** 44 + 8,
      0,
      -1,
      undefined,
      undefined,
    ]);
  });

  it('matches a Map over random ids and values', () => {
    const id = fc.oneof(
      fc.nat({ max: 5000 }).map((n) => `a${n}`),
      fc.nat({ max: 50 }).map((n) => `a0${n}`),
      fc.nat({ max: 50 }).map((n) => `x${n}`),
      fc.string({ maxLength: 4 }),
    );
    const value = fc.oneof(fc.constant(0), fc.constant(-1), fc.integer({ min: 1, max: 2 ** 50 }));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), id, value), { maxLength: 300 }), (ops) => {
        const t = new Table();
        const m = new Map<string, number>();
        for (const [write, k, v] of ops) {
          if (write) {
            t.set(k, v);
            m.set(k, v);
          } else expect(t.get(k)).toBe(m.get(k));
        }
        for (const [k, v] of m) expect(t.get(k)).toBe(v);
      }),
      { seed: 20261126, numRuns: 300 },
    );
  });
});
