/**
 * The vector clock both the race detector and the explorer order events with: increments,
 * joins as pointwise maxima, and the partial order between two clocks.
 */
import { describe, expect, it } from 'vitest';
import { VectorClock } from '../../src/check/vector-clock.ts';

describe('VectorClock', () => {
  it('starts at 0 for every thread and counts increments', () => {
    const c = new VectorClock();
    expect(c.get(0)).toBe(0);
    expect(c.get(5)).toBe(0);
    c.increment(2);
    c.increment(2);
    c.increment(0);
    expect([c.get(0), c.get(1), c.get(2), c.get(3)]).toEqual([1, 0, 2, 0]);
  });

  it('joins as the pointwise maximum, longer or shorter', () => {
    const a = new VectorClock([3, 0, 1]);
    a.join(new VectorClock([1, 4, 0, 2]));
    expect([0, 1, 2, 3].map((i) => a.get(i))).toEqual([3, 4, 1, 2]);
    const b = new VectorClock([0, 0, 0, 7]);
    b.join(new VectorClock([5]));
    expect([0, 1, 2, 3].map((i) => b.get(i))).toEqual([5, 0, 0, 7]);
  });

  it('clones apart: a copy does not follow the original', () => {
    const a = new VectorClock([1, 1]);
    const copy = a.clone();
    a.increment(0);
    expect(copy.get(0)).toBe(1);
    expect(a.get(0)).toBe(2);
  });

  it('compares by the partial order, trailing zeros equal to absent threads', () => {
    expect(new VectorClock([1, 2]).compare(new VectorClock([1, 2, 0]))).toBe(0);
    expect(new VectorClock([1, 2]).compare(new VectorClock([1, 3]))).toBe(-1);
    expect(new VectorClock([1, 3]).compare(new VectorClock([1, 2]))).toBe(1);
    expect(new VectorClock([2, 0]).compare(new VectorClock([1, 1]))).toBe(null);
    expect(new VectorClock([]).compare(new VectorClock([0, 0, 1]))).toBe(-1);
  });

  it('a release and an acquire order the two threads', () => {
    const t0 = new VectorClock();
    const t1 = new VectorClock();
    t0.increment(0);
    const published = t0.clone();
    t0.increment(0);
    t1.increment(1);
    expect(published.compare(t1)).toBe(null);
    t1.join(published);
    expect(published.compare(t1)).toBe(-1);
    expect(t0.compare(t1)).toBe(null);
  });
});
