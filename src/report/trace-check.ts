/**
 * Checks a Chrome trace against the rules its viewers rely on: every B has its E on the same
 * track (same name, properly nested), time never goes backwards on a track, every flow starts
 * and ends inside a span that is open there, and counters carry numbers. Returns the problems
 * found, one line each; none means the trace is well formed.
 */
import { z } from 'zod';

const EventSchema = z
  .object({
    name: z.string(),
    ph: z.enum(['B', 'E', 'i', 'C', 's', 'f', 'M']),
    ts: z.number().finite().nonnegative(),
    pid: z.number().int(),
    tid: z.number().int(),
    cat: z.string().optional(),
    id: z.number().int().optional(),
    s: z.enum(['g', 'p', 't']).optional(),
    bp: z.literal('e').optional(),
    args: z.record(z.unknown()).optional(),
  })
  .strict();

export const ChromeTraceSchema = z.object({
  traceEvents: z.array(EventSchema),
  displayTimeUnit: z.enum(['ms', 'ns']).optional(),
  otherData: z.record(z.unknown()).optional(),
});

export function checkTrace(raw: unknown): string[] {
  const parsed = ChromeTraceSchema.safeParse(raw);
  if (!parsed.success) return parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.')}: ${i.message}`);
  const problems: string[] = [];
  const tracks = new Map<string, { last: number; open: { name: string; ts: number }[] }>();
  const flows = new Map<number, { s: number; f: number }>();
  parsed.data.traceEvents.forEach((e, i) => {
    if (e.ph === 'M') return;
    const key = `${e.pid}/${e.tid}`;
    if (!tracks.has(key)) tracks.set(key, { last: -Infinity, open: [] });
    const t = tracks.get(key)!;
    if (e.ph !== 'C' && e.ph !== 'i') {
      if (e.ts < t.last)
        problems.push(`event ${i} (${e.ph} "${e.name}") on track ${key} goes back in time: ${e.ts} after ${t.last}`);
      t.last = Math.max(t.last, e.ts);
    }
    switch (e.ph) {
      case 'B':
        t.open.push({ name: e.name, ts: e.ts });
        break;
      case 'E': {
        const top = t.open.pop();
        if (!top) problems.push(`event ${i}: E "${e.name}" on track ${key} closes nothing`);
        else if (top.name !== e.name) problems.push(`event ${i}: E "${e.name}" on track ${key} closes "${top.name}"`);
        else if (e.ts < top.ts) problems.push(`event ${i}: "${e.name}" on track ${key} ends before it begins`);
        break;
      }
      case 's':
      case 'f': {
        if (e.id === undefined) problems.push(`event ${i}: flow without an id`);
        else {
          const f = flows.get(e.id) ?? { s: 0, f: 0 };
          f[e.ph]++;
          flows.set(e.id, f);
        }
        if (!t.open.length) problems.push(`event ${i}: flow ${e.ph} ${e.id} on track ${key} is not inside a span`);
        break;
      }
      case 'C':
        if (!e.args || !Object.values(e.args).every((v) => typeof v === 'number' && Number.isFinite(v)))
          problems.push(`event ${i}: counter "${e.name}" has args that are not numbers`);
        break;
      default:
        break;
    }
  });
  for (const [key, t] of tracks)
    for (const o of t.open) problems.push(`track ${key}: B "${o.name}" at ${o.ts} is never closed`);
  for (const [id, f] of flows)
    if (f.s !== 1 || f.f !== 1)
      problems.push(`flow ${id}: ${f.s} start(s) and ${f.f} end(s); a flow links exactly one start to one end`);
  return problems;
}
