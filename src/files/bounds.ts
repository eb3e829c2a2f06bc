/**
 * What a field of a schema allows, read back from the schema: the command line checks its flags
 * against these, so that a flag and the file field it fills can never disagree.
 */
import { z } from 'zod';

/** The schema under its default, nullability, optionality and refinements. */
function inner(s: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (s instanceof z.ZodDefault) s = s.removeDefault();
    else if (s instanceof z.ZodNullable || s instanceof z.ZodOptional) s = s.unwrap();
    else if (s instanceof z.ZodEffects) s = s.innerType();
    else return s;
  }
}

/** The inclusive range of a number field. */
export function rangeOf(s: z.ZodTypeAny): { min: number; max: number } {
  const n = inner(s);
  if (!(n instanceof z.ZodNumber) || n.minValue === null || n.maxValue === null)
    throw new Error('rangeOf: not a number schema with both bounds');
  return { min: n.minValue, max: n.maxValue };
}

/** The values of an enum field, in the schema's order. */
export function choicesOf<T extends string>(s: z.ZodType<T | null, z.ZodTypeDef, unknown>): readonly T[] {
  const e = inner(s);
  if (!(e instanceof z.ZodEnum)) throw new Error('choicesOf: not an enum schema');
  return e.options as T[];
}
