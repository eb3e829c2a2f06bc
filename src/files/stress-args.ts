/**
 * The stress program's defaults, as plain data. The stress program also runs inside CPU worker
 * threads (examples/stress.ts), whose bundle should not carry zod or the scheduler: so these
 * live apart from the schema in config.ts, which takes its defaults from here.
 */

export const SIZE_MIXES = ['small', 'mixed', 'large'] as const;
export type SizeMix = (typeof SIZE_MIXES)[number];

export const DEFAULT_STRESS_ARGS = {
  ops: 2000,
  allocPct: 55,
  reservedPct: 3,
  sizes: 'mixed' as SizeMix,
  maxAlignShift: 6,
  maxLive: 40,
  earlyOps: 200,
};
