/**
 * replay --reference: a trace through the allocator and through the 2.6.36 model, side by
 * side. Silent on the allocator as it is; a changed placement policy is listed operation by
 * operation, with the totals of both.
 */
import { describe, expect, it } from 'vitest';
import { compareWithReferenceOnThreads } from '../../src/smp/model-thread.ts';
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

  it('gives the same answer with the model on a thread of its own, as the command runs it', async () => {
    const text = randomTrace(3, 1500);
    for (const bugs of [[], ['walk-slot-too-high']] as const) {
      const together = compareWithReference(text, { bugs: [...bugs] });
      const apart = await compareWithReferenceOnThreads(text, { bugs: [...bugs] });
      expect(apart).toEqual(together);
    }
  }, 30_000);

  it('says where both sides stopped at a bad line', async () => {
    const text = randomTrace(1, 40).replace(/\n$/, '') + '\n{"op":"alloc","id":"x","size":-1,"align":8}\n';
    const c = await compareWithReferenceOnThreads(text);
    expect(c.stopped.allocator).toMatch(/^line \d+: "size" must be in \[0, \d+\], got -1$/);
    expect(c.stopped.reference).toBe(c.stopped.allocator);
    expect(c.differences).toEqual([]);
  }, 30_000);
});
