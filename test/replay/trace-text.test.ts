/** The first bytes of a trace read in blocks: UTF-16 refused by name, a UTF-8 byte order mark dropped, however the bytes come. */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { type ReadBytes, UnreadableTrace, withoutBom } from '../../src/trace/trace-text.ts';

/** `input` through withoutBom(), `block` bytes per read: what it gives, or the UnreadableTrace's message. */
function read(input: Buffer, block: number): string {
  let at = 0;
  const raw: ReadBytes = (into, pos) => {
    const n = input.copy(into, pos, at, Math.min(input.length, at + block));
    at += n;
    return n;
  };
  const r = withoutBom(raw);
  const into = Buffer.alloc(64);
  let have = 0;
  try {
    for (let n; (n = r(into, have)) > 0;) have += n;
  } catch (e) {
    if (!(e instanceof UnreadableTrace)) throw e;
    return `refused: ${e.message}`;
  }
  return into.toString('latin1', 0, have);
}

const UTF16 = 'refused: the trace is UTF-16 (it starts with a UTF-16 byte order mark); write it as UTF-8';

describe('withoutBom', () => {
  it.each([1, 2, 64])('refuses UTF-16 of either order and drops a UTF-8 mark, %i byte(s) a read', (block) => {
    expect(read(Buffer.from([0xff, 0xfe, 0x7b, 0x00]), block)).toBe(UTF16);
    expect(read(Buffer.from([0xfe, 0xff, 0x00, 0x7b]), block)).toBe(UTF16);
    expect(read(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), block)).toBe('{}');
    // one mark is dropped, not two; a trace of the mark alone is empty
    expect(read(Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), block)).toBe('\xef\xbb\xbf');
    expect(read(Buffer.from([0xef, 0xbb, 0xbf]), block)).toBe('');
    expect(read(Buffer.from('{}'), block)).toBe('{}');
  });
});
