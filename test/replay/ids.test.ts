/** The replay's id table answers exactly as a Map of every id would, whatever the ids look like. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdTable } from '../../src/trace/id-table.ts';

describe('IdTable', () => {
  it('keeps spellings apart: a leading zero, another prefix, no number, a long number', () => {
    const t = new IdTable();
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
    ];
    ids.forEach((id, i) => t.set(id, i * 1000));
    ids.forEach((id, i) => expect(t.get(id)).toBe(i * 1000));
    expect(t.get('a2')).toBeUndefined();
    expect(t.get('b2')).toBeUndefined();
    // the values the replay stores: a pointer, 0 for a failed allocation, -1 for freed
    t.set('a5', 0);
    t.set('a6', -1);
    t.set('a7', 2 ** 44 + 16);
    expect([t.get('a5'), t.get('a6'), t.get('a7')]).toEqual([0, -1, 2 ** 44 + 16]);
  });

  it("finds from an id's bytes the dense index its string has, and spells it back", () => {
    const id = fc.oneof(
      fc.nat({ max: 9_999_999 }).map((n) => `a${n}`),
      fc.nat({ max: 99 }).map((n) => `a0${n}`),
      fc.nat({ max: 99 }).map((n) => `ab${n}`),
      fc.nat({ max: 99 }).map((n) => `${n}`),
      fc.stringMatching(/^[a-z0-9]{0,4}$/),
    );
    fc.assert(
      fc.property(fc.array(id, { minLength: 1, maxLength: 200 }), (ids) => {
        const t = new IdTable();
        ids.forEach((k, n) => {
          const b = Buffer.from(` ${k} `, 'latin1');
          const i = t.slotOf(b, 1, b.length - 1);
          if (i >= 0) {
            expect(t.idAt(i)).toBe(k);
            t.setAt(i, n + 1); // where set() would have put it, or get() would not find it
          } else t.set(k, n + 1);
          expect(t.get(k)).toBe(n + 1);
          if (i >= 0) expect(t.getAt(i)).toBe(n + 1);
        });
      }),
      { seed: 20261201, numRuns: 300 },
    );
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
        const t = new IdTable();
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
