/** Flags and checks shared by the commands that build a machine (run, stress). */
import { MUTANT_NAMES, type MutantName, isMutant } from '../kernel/mutants.ts';

export const MACHINE_OPTIONS = {
  cpus: { type: 'string' },
  nodes: { type: 'string' },
  backend: { type: 'string' },
  memory: { type: 'string' },
  seed: { type: 'string' },
  policy: { type: 'string' },
} as const;

/** Checking and output flags. */
export const CHECK_OPTIONS = {
  mutant: { type: 'string' },
  strict: { type: 'boolean' },
  count: { type: 'boolean' },
  save: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The --mutant value, checked against the list; `fail` reports bad usage. */
export function parseMutant(v: unknown, fail: (msg: string) => never): MutantName | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !isMutant(v))
    return fail(`--mutant must be one of ${MUTANT_NAMES.join(', ')}, got "${String(v)}"`);
  return v;
}
