/**
 * A trace replayed twice, through the allocator and through the 2.6.36 reference model
 * (src/model), and held side by side: every operation where the two part ways, and the
 * totals of each. For someone who changes the allocator on purpose (another fit policy, a
 * later kernel's patch), this is the list of behaviour changes.
 */
import { ReplayError, replayOnModel } from '../model/replay.ts';
import { BadInput, type ReplayOptions, replayText } from './replay.ts';

export interface Difference {
  /** the input line */
  line: number;
  input: string;
  allocator: string;
  reference: string;
}

export interface Totals {
  operations: number;
  allocations: number;
  failures: number;
  /** chunks an allocation landed in, the first and reserved ones included */
  chunks: number;
  /** bytes still allocated at the end */
  live: number;
}

export interface ReferenceComparison {
  differences: Difference[];
  allocator: Totals;
  reference: Totals;
  /** where one side stopped at a bad line the other did not */
  stopped: { allocator: string | null; reference: string | null };
}

type Line = { chunk?: string | number | null; op?: string; id?: string; size?: number };

/** Totals from a side's output lines (the replay format's result lines); sizes come from the input. */
function totals(out: readonly string[], asked: ReadonlyMap<string, number>): Totals {
  const t: Totals = { operations: out.length, allocations: 0, failures: 0, chunks: 0, live: 0 };
  const chunks = new Set<string>();
  const size = new Map<string, number>();
  for (const l of out) {
    const o = JSON.parse(l) as Line;
    if (o.op === 'alloc') {
      if (o.chunk === null || o.chunk === undefined) t.failures++;
      else {
        t.allocations++;
        chunks.add(String(o.chunk));
        if (o.id !== undefined) size.set(o.id, asked.get(o.id) ?? 0);
      }
    } else if (o.op === 'free' && o.id !== undefined) size.delete(o.id);
  }
  t.chunks = chunks.size;
  for (const s of size.values()) t.live += s;
  return t;
}

export function compareWithReference(text: string, opts: ReplayOptions = {}): ReferenceComparison {
  const mine: string[] = [];
  const ref: string[] = [];
  const stopped = { allocator: null as string | null, reference: null as string | null };
  try {
    replayText(text, (l) => mine.push(l), opts);
  } catch (e) {
    if (!(e instanceof BadInput)) throw e;
    stopped.allocator = e.message;
  }
  try {
    replayOnModel(text, (l) => ref.push(l));
  } catch (e) {
    if (!(e instanceof ReplayError)) throw e;
    stopped.reference = e.message;
  }
  // the output lines follow the non-blank input lines one for one
  const inputs: [number, string][] = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (l.trim() !== '') inputs.push([i + 1, l]);
  });
  const asked = new Map<string, number>();
  for (const [, l] of inputs)
    try {
      const o = JSON.parse(l) as Line;
      if (o.op === 'alloc' && typeof o.id === 'string' && typeof o.size === 'number') asked.set(o.id, o.size);
    } catch {
      // a bad line: both sides stop there and say so
    }
  const differences: Difference[] = [];
  for (let i = 0; i < Math.max(mine.length, ref.length); i++)
    if (mine[i] !== ref[i]) {
      const [line, input] = inputs[i] ?? [0, ''];
      differences.push({ line, input, allocator: mine[i] ?? '(nothing)', reference: ref[i] ?? '(nothing)' });
    }
  return { differences, allocator: totals(mine, asked), reference: totals(ref, asked), stopped };
}
