/**
 * Flags checked against the schema of the file field they fill, so that a flag and its field
 * can never disagree. Apart from common.ts because reading a schema loads zod, which the
 * commands that fill no file field (replay) need not wait for.
 */
import type { z } from 'zod';
import { choicesOf, rangeOf } from '../files/bounds.ts';
import { int, num, oneOf } from './common.ts';

/** A whole-number flag within the bounds of the schema field it fills. */
export function intIn(flag: string, v: unknown, field: z.ZodTypeAny, dflt: number): number {
  const { min, max } = rangeOf(field);
  return int(flag, v, min, max, dflt);
}

/** A number flag within the bounds of the schema field it fills. */
export function numIn(flag: string, v: unknown, field: z.ZodTypeAny, dflt: number): number {
  const { min, max } = rangeOf(field);
  return num(flag, v, min, max, dflt);
}

/** A flag that names one of the values of the schema field it fills. */
export function oneOfIn<T extends string>(
  flag: string,
  v: unknown,
  field: z.ZodType<T | null, z.ZodTypeDef, unknown>,
  dflt: T,
): T {
  return oneOf(flag, v, choicesOf(field), dflt);
}
