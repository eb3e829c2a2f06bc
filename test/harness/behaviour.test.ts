/**
 * The simulation's behaviour is pinned by a record taken before it was rebuilt around one
 * harness (test/fixtures/behaviour/record.json): the verdict and first violation of stress
 * seeds 1-300 with default flags and with each named mutant, and every exploration. This
 * test reruns a sample of it on every `npm test`; `npm run check:behaviour` reruns all of it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { violationLine } from '../../src/check/violation.ts';
import type { MutantName } from '../../src/kernel/mutants.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';

type Entry = [seed: number, verdict: 'clean' | 'violation', first: string | null] | [seed: number, 'workers'];
const record = JSON.parse(readFileSync('test/fixtures/behaviour/record.json', 'utf8')) as {
  stress: Record<string, Entry[]>;
};

/** Per configuration: the first two seeds that found a violation and the first clean one. */
function sample(entries: Entry[]): [number, string, string | null][] {
  const engine = entries.filter((e): e is [number, 'clean' | 'violation', string | null] => e[1] !== 'workers');
  return [
    ...engine.filter((e) => e[1] === 'violation').slice(0, 2),
    ...engine.filter((e) => e[1] === 'clean').slice(0, 1),
  ];
}

describe('behaviour against the record', () => {
  for (const [mutant, entries] of Object.entries(record.stress))
    it.each(sample(entries))(
      `stress ${mutant}: seed %i is %s, first violation as recorded`,
      async (seed, verdict, first) => {
        const r = await runStress({
          ...DEFAULT_STRESS,
          seed,
          mutant: mutant === 'none' ? null : (mutant as MutantName),
          // the record predates the reference model
          reference: false,
        });
        expect(r.verdict).toBe(verdict);
        expect(r.violations[0] ? violationLine(r.violations[0]) : null).toBe(first);
      },
    );
});
