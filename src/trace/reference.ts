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

const ALLOC = '{"op":"alloc","id":';
const FREE = '{"op":"free","id":';

/**
 * Totals from a side's output lines. Both sides write the replay format's result lines
 * (docs/replay-format.md), so a line's op, id and chunk are read off its text where the
 * format puts them; `sizeAt(i)` is the size the i-th operation asked for.
 */
function totals(out: readonly string[], sizeAt: (i: number) => number): Totals {
  const t: Totals = { operations: out.length, allocations: 0, failures: 0, chunks: 0, live: 0 };
  const chunks = new Set<string>();
  /** id (as its JSON text) -> index of the line that placed it */
  const live = new Map<string, number>();
  out.forEach((l, i) => {
    if (l.startsWith(ALLOC)) {
      // a JSON string holds no bare quote, so the first ',"chunk":' ends the id
      const at = l.indexOf(',"chunk":', ALLOC.length);
      if (at < 0) return;
      const comma = l.indexOf(',', at + 9);
      const chunk = l.slice(at + 9, comma < 0 ? -1 : comma);
      if (chunk === 'null') t.failures++;
      else {
        t.allocations++;
        chunks.add(chunk);
        live.set(l.slice(ALLOC.length, at), i);
      }
    } else if (l.startsWith(FREE)) live.delete(l.slice(FREE.length, -1));
  });
  t.chunks = chunks.size;
  for (const i of live.values()) t.live += sizeAt(i);
  return t;
}

/** One side's output lines, and the message of the bad line it stopped at, if any. */
export interface Side {
  lines: string[];
  stopped: string | null;
}

/** The allocator's side: `percpu-sim replay`'s output lines. */
export function allocatorSide(text: string, opts: ReplayOptions = {}): Side {
  const lines: string[] = [];
  try {
    replayText(text, (l) => lines.push(l), opts);
  } catch (e) {
    if (!(e instanceof BadInput)) throw e;
    return { lines, stopped: e.message };
  }
  return { lines, stopped: null };
}

/** The model's side: the same format from src/model alone. */
export function modelSide(text: string): Side {
  const lines: string[] = [];
  try {
    replayOnModel(text, (l) => lines.push(l));
  } catch (e) {
    if (!(e instanceof ReplayError)) throw e;
    return { lines, stopped: e.message };
  }
  return { lines, stopped: null };
}

/** Both sides in this thread, one after the other. smp/model-thread.ts runs them side by side. */
export function compareWithReference(text: string, opts: ReplayOptions = {}): ReferenceComparison {
  return compareSides(text, allocatorSide(text, opts), modelSide(text));
}

/** The operations where the two sides' output lines differ, and each side's totals. */
export function compareSides(
  text: string,
  allocator: Side,
  model: Side,
  prepared: PreparedSide = prepareSide(text, allocator),
): ReferenceComparison {
  const mine = allocator.lines;
  const ref = model.lines;
  const { inputs, totals: mineTotals } = prepared;
  const differences: Difference[] = [];
  for (let i = 0; i < Math.max(mine.length, ref.length); i++)
    if (mine[i] !== ref[i]) {
      const { line, text: l } = inputs.at(i);
      differences.push({ line, input: l, allocator: mine[i] ?? '(nothing)', reference: ref[i] ?? '(nothing)' });
    }
  // totals are a function of the lines: the same lines, the same totals
  const same = !differences.length && mine.length === ref.length;
  return {
    differences,
    allocator: mineTotals,
    reference: same ? { ...mineTotals } : totals(ref, (i) => inputs.sizeAt(i)),
    stopped: { allocator: allocator.stopped, reference: model.stopped },
  };
}

/** What the comparison needs of one side alone: worked out while the other side may still run. */
export interface PreparedSide {
  inputs: Inputs;
  totals: Totals;
}

export function prepareSide(text: string, side: Side): PreparedSide {
  const inputs = new Inputs(text);
  return { inputs, totals: totals(side.lines, (i) => inputs.sizeAt(i)) };
}

/** The trace's input lines, which the output lines follow one for one (blank lines have none). */
class Inputs {
  private index: InputLines | null = null;
  private readonly sizes = new Map<number, number>();

  constructor(private readonly text: string) {}

  /** The i-th non-blank input line and its number (from 1); found by offset, once. */
  at(i: number): { line: number; text: string } {
    const x = (this.index ??= inputLines(this.text));
    return i < x.line.length
      ? { line: x.line[i]!, text: this.text.slice(x.start[i], x.end[i]) }
      : { line: 0, text: '' };
  }

  /** The size the i-th operation asked for (0 for a line that is not an allocation). */
  sizeAt(i: number): number {
    let size = this.sizes.get(i);
    if (size === undefined) {
      const l = this.at(i).text;
      const canonical = CANONICAL_ALLOC.exec(l);
      if (canonical) size = Number(canonical[1]);
      else
        try {
          const o = JSON.parse(l) as { size?: unknown };
          size = typeof o.size === 'number' ? o.size : 0;
        } catch {
          size = 0; // a bad line: both sides stop there and say so
        }
      this.sizes.set(i, size);
    }
    return size;
  }
}

/** The alloc line as trace writers spell it; any other spelling is read as JSON. */
const CANONICAL_ALLOC = /^\{"op":"alloc","id":"[^"\\]*","size":(\d+),/;

/** Each non-blank input line: its number (from 1) and its span in the text, without the line end. */
interface InputLines {
  line: number[];
  start: number[];
  end: number[];
}

function inputLines(text: string): InputLines {
  const out: InputLines = { line: [], start: [], end: [] };
  let start = 0;
  for (let line = 1; start <= text.length; line++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const next = end + 1;
    if (end > start && text.charCodeAt(end - 1) === 13) end--;
    const c = text.charCodeAt(start);
    // a line that starts with a printable character is not blank; others are asked as replay asks
    if ((c > 32 && c < 127) || text.slice(start, end).trim() !== '') {
      out.line.push(line);
      out.start.push(start);
      out.end.push(end);
    }
    start = next;
  }
  return out;
}
