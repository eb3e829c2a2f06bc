/**
 * replay --reference: a trace through the allocator and through the 2.6.36 model, side by
 * side. Silent on the allocator as it is; a changed placement policy is listed operation by
 * operation, with the totals of both.
 */
import { describe, expect, it } from 'vitest';
import { compareWithReference } from '../../src/trace/reference.ts';
import { randomTrace } from './random-trace.ts';

describe('replay --reference', () => {
  it('finds no difference on random traces', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const c = compareWithReference(randomTrace(seed, 1500));
      expect(c.differences, `trace ${seed}`).toEqual([]);
      expect(c.allocator).toEqual(c.reference);
    }
  });

  it('lists every operation a changed slot walk places elsewhere, and both totals', () => {
    const text = randomTrace(3, 1500);
    const c = compareWithReference(text, { bugs: ['walk-slot-too-high'] });
    expect(c.differences.length).toBeGreaterThan(0);
    const first = c.differences[0]!;
    expect(text.split('\n')[first.line - 1]).toBe(first.input);
    expect(JSON.parse(first.input)).toMatchObject({ op: 'alloc' });
    expect(first.allocator).not.toBe(first.reference);
    expect(c.reference.operations).toBe(c.allocator.operations);
  });
});
