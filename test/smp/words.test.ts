/**
 * this_cpu_words(): a typed view of this CPU's copy. Unchecked it is a plain Int32Array over
 * the frames; checked, every index access goes through the isolation checks, so a view kept
 * past free_percpu() is caught as a use after free.
 */
import { describe, expect, it } from 'vitest';
import { runWorkload } from '../../src/smp/run.ts';

const WL = 'test/fixtures/words.ts';

describe('this_cpu_words', () => {
  it('writes through the view land in this CPU copy, read back through the API, with or without checking', async () => {
    const checked = await runWorkload({ workload: WL, cpus: 3, seed: 1 });
    expect(checked.violations).toEqual([]);
    const raw = await runWorkload({ workload: WL, cpus: 3, seed: 1, check: false, args: { checked: false } });
    expect(raw.violations).toEqual([]);
  });

  it('checked, a view used after free_percpu() is a use after free on every CPU', async () => {
    const r = await runWorkload({ workload: WL, cpus: 2, seed: 1, args: { afterFree: true } });
    expect(r.verdict).toBe('fail');
    // which CPU allocates first is up to the threads: the numbers differ, the finding does not
    expect(r.violations.length).toBe(2);
    r.violations.forEach((v, cpu) =>
      expect(`${v.checker}/${v.kind}: ${v.message}`).toMatch(
        new RegExp(
          `^isolation/use-after-free: use-after-free: cpu ${cpu} wrote 4 bytes at [0-9a-f]{16} in cpu ${cpu}'s copy, allocation #\\d+ \\(64 bytes at chunk 0 offset \\d+, made by cpu ${cpu}, freed\\): wrote an area that was freed \\(seed 1\\)$`,
        ),
      ),
    );
  });
});
