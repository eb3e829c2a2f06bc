/**
 * this_cpu_words(): a typed view of this CPU's copy. Unchecked, and checked by default, it is
 * a plain Int32Array over the frames; checked, it is checked when made and watched after, so a
 * write through it after its area is freed (by this CPU or another) is caught as a use after
 * free. The fully checked view ({ everyAccess: true }) puts every index access through the checks.
 */
import { describe, expect, it } from 'vitest';
import { runWorkload } from '../../src/smp/run.ts';

const WL = 'test/fixtures/words.ts';

/** The use-after-free a write through CPU `cpu`'s view of its freed 64-byte area is reported as. */
const useAfterFree = (cpu: number, maker: number | string = cpu): RegExp =>
  new RegExp(
    `^isolation/use-after-free: use-after-free: cpu ${cpu} wrote 4 bytes at [0-9a-f]{16} in cpu ${cpu}'s copy, allocation #\\d+ \\(64 bytes at chunk 0 offset \\d+, made by cpu ${maker}, freed\\): wrote an area that was freed \\(seed 1\\)$`,
  );

describe('this_cpu_words', () => {
  it.each([
    ['watched view', { every: false }],
    ['fully checked view', { every: true }],
  ])(
    'writes through the %s land in this CPU copy, read back through the API, with or without checking',
    async (_name, args) => {
      const checked = await runWorkload({ workload: WL, cpus: 3, seed: 1, args });
      expect(checked.violations).toEqual([]);
      const raw = await runWorkload({
        workload: WL,
        cpus: 3,
        seed: 1,
        check: false,
        args: { ...args, checked: false },
      });
      expect(raw.violations).toEqual([]);
    },
  );

  it.each([
    ['watched view', { every: false }],
    ['fully checked view', { every: true }],
  ])('checked, a %s used after free_percpu() is a use after free on every CPU', async (_name, args) => {
    const r = await runWorkload({ workload: WL, cpus: 2, seed: 1, args: { afterFree: true, ...args } });
    expect(r.verdict).toBe('fail');
    // which CPU allocates first is up to the threads: the numbers differ, the finding does not
    expect(r.violations.length).toBe(2);
    r.violations.forEach((v, cpu) => expect(`${v.checker}/${v.kind}: ${v.message}`).toMatch(useAfterFree(cpu)));
  });

  it('checked, a write through a view of an area another CPU freed is a use after free of the viewing CPU', async () => {
    const r = await runWorkload({ workload: 'test/fixtures/words-remote.ts', cpus: 2, seed: 1 });
    expect(r.verdict).toBe('fail');
    expect(r.violations.map((v) => `${v.checker}/${v.kind}: ${v.message}`)).toEqual([
      expect.stringMatching(useAfterFree(0)),
    ]);
    // a read through the stale view is not seen: the limit of a view that is not fully checked
    const read = await runWorkload({
      workload: 'test/fixtures/words-remote.ts',
      cpus: 2,
      seed: 1,
      args: { write: false },
    });
    expect(read.violations).toEqual([]);
  });
});
