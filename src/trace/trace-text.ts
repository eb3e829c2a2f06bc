/**
 * How the bytes of a trace become text: traces are ASCII as a rule, and then the bytes are the
 * characters. A UTF-8 byte order mark at the start is skipped and UTF-16 is refused by name;
 * a byte that is not UTF-8 becomes a lone surrogate (U+DC80 to U+DCFF, as Python's
 * surrogateescape does), so that two ids that differ only there stay two ids, and an output
 * line shows it as \udcXX rather than as one replacement character for both.
 */
import { Buffer, isAscii } from 'node:buffer';

/** A trace that cannot be read as text at all (the command line reports it as a usage error). */
export class UnreadableTrace extends Error {}

/** Fills `into` from `at` on; returns how many bytes it read, 0 at the end of the trace. */
export type ReadBytes = (into: Buffer, at: number) => number;

/** The trace's first bytes: UTF-16 is refused by name, a UTF-8 byte order mark is dropped (as traceText()). */
export function withoutBom(read: ReadBytes): ReadBytes {
  let first = true;
  return (into, at) => {
    let n = read(into, at);
    if (!first) return n;
    first = false;
    // a regular file or a whole buffer gives its first bytes at once; a shorter start is read on
    while (n > 0 && n < 3) {
      const more = read(into, at + n);
      if (more <= 0) break;
      n += more;
    }
    if (markLength(into, at, n)) {
      into.copy(into, at, at + 3, at + n);
      n -= 3;
      // the mark came alone (a pipe, a byte at a time): 0 here would read as the trace's end
      if (n === 0) n = read(into, at);
    }
    return n;
  };
}

/** One line's bytes as text, by traceText()'s rules. */
export function lineText(bytes: Buffer): string {
  if (isAscii(bytes)) return bytes.toString('latin1');
  try {
    return UTF8.decode(bytes);
  } catch {
    return escapeInvalidUtf8(bytes);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A whole trace's bytes as text (see above). */
export function traceText(bytes: Buffer): string {
  return lineText(bytes.subarray(markLength(bytes, 0, bytes.length)));
}

/**
 * The length of the UTF-8 byte order mark that the n bytes at bytes[at] start with: 3, or 0
 * when there is none. A UTF-16 mark is refused by name.
 */
function markLength(bytes: Uint8Array, at: number, n: number): number {
  const b0 = bytes[at];
  const b1 = bytes[at + 1];
  if (n >= 2 && ((b0 === 0xff && b1 === 0xfe) || (b0 === 0xfe && b1 === 0xff)))
    throw new UnreadableTrace('the trace is UTF-16 (it starts with a UTF-16 byte order mark); write it as UTF-8');
  return n >= 3 && b0 === 0xef && b1 === 0xbb && bytes[at + 2] === 0xbf ? 3 : 0;
}

/** UTF-8 with every byte outside a well-formed sequence as U+DC00 plus that byte. */
function escapeInvalidUtf8(b: Uint8Array): string {
  const out: string[] = [];
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const need =
      c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    let ok = need >= 0 && i + need < b.length;
    for (let k = 1; ok && k <= need; k++) ok = (b[i + k]! & 0xc0) === 0x80;
    // no overlong forms, no surrogates, nothing past U+10FFFF
    if (ok && need === 2) ok = !(c === 0xe0 && b[i + 1]! < 0xa0) && !(c === 0xed && b[i + 1]! >= 0xa0);
    if (ok && need === 3) ok = !(c === 0xf0 && b[i + 1]! < 0x90) && !(c === 0xf4 && b[i + 1]! >= 0x90);
    if (ok) {
      out.push(Buffer.from(b.subarray(i, i + need + 1)).toString('utf8'));
      i += need + 1;
    } else {
      out.push(String.fromCharCode(0xdc00 + c));
      i++;
    }
  }
  return out.join('');
}
