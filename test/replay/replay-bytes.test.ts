/**
 * replayBytes() (the replay command's reader) against replayText() on the same traces: the
 * same output bytes and the same error, whatever blocks the trace comes in, for the lines it
 * reads itself (alloc, reserved alloc, free) and for those it hands to step().
 */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { ByteLines, replayBytes } from '../../src/trace/replay-bytes.ts';
import { BadInput, replayText } from '../../src/trace/replay.ts';
import { finish } from '../../src/util/steps.ts';
import { Prng } from '../../src/util/prng.ts';
import { randomTrace } from './random-trace.ts';

function viaText(text: string): { out: string; error: string | null } {
  const lines: string[] = [];
  try {
    replayText(text, (l) => lines.push(l), { memoryBytes: 256 << 20 });
    return { out: lines.map((l) => l + '\n').join(''), error: null };
  } catch (e) {
    if (!(e instanceof BadInput)) throw e;
    return { out: lines.map((l) => l + '\n').join(''), error: e.message };
  }
}

/** The trace given in blocks of at most `block` bytes. */
function viaBytes(text: string, block: number): { out: string; error: string | null } {
  const input = Buffer.from(text, 'utf8');
  const chunks: Buffer[] = [];
  // every other block is kept as it is, as a pipe's queue keeps it: ByteLines must not write
  // over it; the others are copied and may be written over, as after a file's write
  const out = new ByteLines((b) => chunks.push(chunks.length % 2 ? b : Buffer.from(b)) % 2 === 1);
  let at = 0;
  const read = (into: Buffer, pos: number): number => {
    const n = input.copy(into, pos, at, Math.min(input.length, at + block));
    at += n;
    return n;
  };
  let error: string | null = null;
  try {
    finish(replayBytes(read, out, (b) => b.toString('utf8'), { memoryBytes: 256 << 20 }));
  } catch (e) {
    if (!(e instanceof BadInput)) throw e;
    error = e.message;
  }
  return { out: Buffer.concat(chunks).toString('utf8'), error };
}

/** Lines of every kind the reader must tell apart, among a random trace's. */
function mixedTrace(seed: number): string {
  const r = new Prng(seed);
  const lines = randomTrace(seed, 1500).trimEnd().split('\n');
  const odd = [
    '',
    '   ',
    '{"op":"alloc","id":"r1","size":16,"align":8,"reserved":true}',
    '{"op":"alloc","id":"r2","size":16,"align":8,"reserved":false}',
    '{"op":"alloc","id":"s1", "size":16,"align":8}',
    '{"op":"alloc","id":"s2","size":016,"align":8}',
    '{"op":"alloc","id":"s3","size":16.0,"align":8}',
    '{"op":"alloc","id":"s4","size":1e2,"align":8}',
    '{"op":"alloc","id":"\\u00e9t\\u00e9","size":16,"align":8}',
    '{"op":"alloc","id":"été","size":24,"align":8}',
    '{"op":"alloc","id":"s5","size":0,"align":8}',
    '{"op":"alloc","id":"s6","size":123456789012345,"align":8}',
    '{"op":"alloc","id":"s7","align":8,"size":32}',
    '{"op":"alloc","id":"","size":40,"align":16}',
  ];
  for (let k = 0; k < 30; k++) {
    const at = r.int(2, lines.length - 1);
    const line = r.pick(odd);
    // an id used twice would stop the trace: number the odd ones apart
    lines.splice(at, 0, line.replace(/"id":"([^"]*)"/, `"id":"$1_${k}"`));
  }
  return lines.map((l) => (r.chance(0.05) ? l + '\r' : l)).join('\n') + (r.chance(0.5) ? '\n' : '');
}

describe('replayBytes writes what replayText writes', () => {
  it.each([1, 2, 3, 4, 5, 6])('random trace %i, in blocks of 1 byte to 1 MiB', (seed) => {
    const text = mixedTrace(seed);
    const want = viaText(text);
    for (const block of [7, 64, 1000, 1 << 20]) {
      const got = viaBytes(text, block);
      expect(got.error).toBe(want.error);
      expect(got.out).toBe(want.out);
    }
    expect(viaBytes(text, 1).out).toBe(want.out);
  });

  it('reads lines written by other JSON writers: spaces, tabs, any key order, keys twice', () => {
    // each line of a random trace written again as another writer might: JSON's whitespace
    // between any two tokens, the keys in any order, "reserved":false spelled out, and now
    // and then a key given twice (JSON.parse keeps the last)
    for (const seed of [11, 12, 13, 14]) {
      const r = new Prng(seed);
      const ws = (): string => (r.chance(0.5) ? '' : r.pick([' ', '  ', '\t', ' \t ', '\r ']));
      const lines = randomTrace(seed, 800)
        .trimEnd()
        .split('\n')
        .map((line) => {
          const o = JSON.parse(line) as Record<string, unknown>;
          const entries = Object.entries(o);
          if (o.op === 'alloc' && o.reserved === undefined && r.chance(0.2)) entries.push(['reserved', false]);
          for (let k = entries.length - 1; k > 0; k--) {
            const j = r.int(0, k);
            [entries[k], entries[j]] = [entries[j]!, entries[k]!];
          }
          if (o.op !== 'boot' && r.chance(0.03)) entries.unshift([r.pick(Object.keys(o)), r.pick([8, 'zz'])]);
          if (o.op === 'alloc' && r.chance(0.05)) entries.unshift(['reserved', !o.reserved]);
          const body = entries.map(([k, v]) => `${ws()}${JSON.stringify(k)}${ws()}:${ws()}${JSON.stringify(v)}${ws()}`);
          return `${ws()}{${body.join(',')}}${ws()}`;
        });
      const text = lines.join('\n') + '\n';
      const want = viaText(text);
      expect(want.error).toBeNull();
      for (const block of [13, 1 << 20]) expect(viaBytes(text, block)).toEqual(want);
    }
  });

  it('leaves to step() what JSON does not allow, and says what it says', () => {
    const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
    const bad = [
      '{"op":"alloc",\u000b"id":"v","size":16,"align":8}',
      '{"op":"alloc","id":"v","size":16,"align":8}\u000c',
      '{"op":"alloc","id":"v","size":16,"align":8,}',
      '{"op":"alloc" "id":"v","size":16,"align":8}',
      '{"op":"alloc","id":"v","size":16,"align":8}}',
      '{"op":"alloc","id":"v","size":-16,"align":8}',
      '{"op":"alloc","id":"v","size":16,"align":8,"reserved":1}',
      '{"op":"alloc","id":"v","size":16}',
      '{"op":"free","id":"v","size":16}',
      '{"op":"free"}',
      '{"id":"v","size":16,"align":8}',
      '{"op":"Alloc","id":"v","size":16,"align":8}',
      '{"op" : "free" , "id" : "never"}',
      '{"op":"alloc","id":"v","size":16,"align":8,"colour":"red"}',
      '{"op":"alloc","id":"v","size":9999999999999999,"align":8}',
      '{"op":"alloc","id":"a\tb","size":16,"align":8}',
      '{"op":"alloc","id":"v","size":16,"align":8}}\r',
      'x\r',
    ];
    for (const line of bad) {
      const text = `${BOOT}\n${line}\n`;
      const want = viaText(text);
      expect(want.error, line).toMatch(/^line 2: /);
      expect(viaBytes(text, 1 << 20), line).toEqual(want);
    }
  });

  it('reads every byte of the lines it reads itself: any one changed, it answers as step() does', () => {
    // each byte of each line, in turn, made another byte; the reader compares its literals
    // in words, and a byte a word misses would read "alxoc" or "reserxed" as what it is not
    const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
    const lines = [
      '{"op":"alloc","id":"v","size":16,"align":8,"reserved":false}',
      '{"op":"alloc","id":"v","size":16,"align":8,"reserved":true}',
      '{"op": "alloc", "id": "v", "size": 16, "align": 8}',
      '{"align":8,"size":16,"id":"v","op":"alloc"}',
      '{"op":"free","id":"v"}',
      '{"op": "free", "id": "v"}',
      '{"id":"v","op":"free"}',
    ];
    let changed = 0;
    for (const line of lines)
      for (let k = 0; k < line.length; k++)
        for (const c of ['x', ' ', '"', '}', line[k] === 'e' ? 'f' : 'e']) {
          if (line[k] === c) continue;
          const bent = line.slice(0, k) + c + line.slice(k + 1);
          // the free lines free an id the trace allocated, so that a free read right replays
          const text = `${BOOT}\n{"op":"slab_online"}\n{"op":"alloc","id":"v","size":8,"align":8}\n${bent}\n`;
          const want = viaText(text);
          expect(viaBytes(text, 1 << 20), bent).toEqual(want);
          changed++;
        }
    expect(changed).toBeGreaterThan(1000);
  });

  it('names an id the same way in its errors, whatever it is made of', () => {
    const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
    const alloc = (id: string): string => `{"op":"alloc","id":"${id}","size":16,"align":8}`;
    const cases: [string[], string][] = [
      [[alloc('été'), alloc('été')], 'line 3: id "été" is still live'],
      [[alloc('k'.repeat(200)), alloc('k'.repeat(200))], `line 3: id "${'k'.repeat(200)}" is still live`],
      [
        [alloc('kmtzx'), alloc('k31cd'), '{"op":"free","id":"k31cd"}', '{"op":"free","id":"k31cd"}'],
        'line 5: id "k31cd" is already freed',
      ],
      [
        [alloc('a1'), alloc('a8388608'), '{"op":"free","id":"a8388608"}', alloc('a8388608'), alloc('a8388608')],
        'line 6: id "a8388608" is still live',
      ],
      [[alloc('a1'), '{"op":"free","id":"a1"}\r', '{"op":"free","id":"a1"}\r'], 'line 4: id "a1" is already freed'],
    ];
    for (const [lines, error] of cases) {
      const text = [BOOT, ...lines].join('\n');
      expect(viaText(text).error).toBe(error);
      expect(viaBytes(text, 1 << 20)).toEqual(viaText(text));
    }
  });

  it('stops at the same bad line with the same message, the lines before it written', () => {
    const text = [
      '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}',
      '{"op":"alloc","id":"a","size":16,"align":8}',
      '{"op":"free","id":"b"}',
      '{"op":"alloc","id":"c","size":16,"align":8}',
    ].join('\n');
    const got = viaBytes(text, 5);
    expect(got.error).toBe('line 3: id "b" was never allocated');
    expect(got.out).toBe(
      '{"op":"boot","unit_size":65536,"static_size":20000,"reserved_size":8192,"dyn_size":20960}\n{"op":"alloc","id":"a","chunk":0,"offset":28192}\n',
    );
    expect(viaBytes(text, 5)).toEqual(viaText(text));
  });

  it('says what replayText says of numbered ids used wrongly', () => {
    const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
    const a1 = '{"op":"alloc","id":"a1","size":16,"align":8}';
    const free = (id: string) => `{"op":"free","id":"${id}"}`;
    const cases: [string[], string][] = [
      [[BOOT, a1, a1], 'line 3: id "a1" is still live'],
      [[BOOT, a1, free('a2')], 'line 3: id "a2" was never allocated'],
      [[BOOT, a1, free('a1'), free('a1')], 'line 4: id "a1" is already freed'],
      [[BOOT, a1, free('a01')], 'line 3: id "a01" was never allocated'],
    ];
    for (const [lines, error] of cases) {
      const text = lines.join('\n');
      expect(viaBytes(text, 1 << 20).error).toBe(error);
      expect(viaBytes(text, 1 << 20)).toEqual(viaText(text));
    }
  });

  it('calls a trace of blank lines empty, as replayText does', () => {
    expect(viaBytes('\n  \n\r\n', 3)).toEqual({
      out: '',
      error: 'line 1: the trace is empty: it must start with a "boot" line',
    });
    expect(viaText('\n  \n\r\n').error).toBe('line 1: the trace is empty: it must start with a "boot" line');
  });

  it('drops the carriage return of a last line that has no newline, in its output and its errors', () => {
    const boot = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
    for (const last of [
      'x\r',
      '{"op":"free","id":"x"}\r',
      '{"op":"free","id":"x y"}\r',
      '{"op":"alloc","id":"x","size":8,"align":8}\r',
    ]) {
      const text = `${boot}\n${last}`;
      const want = viaText(text);
      expect(viaBytes(text, 1 << 20)).toEqual(want);
      expect(viaBytes(text, 5)).toEqual(want);
    }
    expect(viaBytes(`${boot}\n{"op":"free","id":"x"}\r`, 9).error).toBe('line 2: id "x" was never allocated');
  });

  it('writes an output of many blocks whole, whether a write leaves its block or keeps it', () => {
    // about 1 MB of output: four blocks and more, every other one kept by the writer
    const text = randomTrace(7, 24000);
    const want = viaText(text);
    expect(want.out.length).toBeGreaterThan(4 << 18);
    expect(viaBytes(text, 1 << 20)).toEqual(want);
  });

  it('reads a line longer than its block', () => {
    const id = 'x'.repeat(3 << 20);
    const text = `{"op":"boot","static_size":20000,"reserved_size":0,"dyn_size":20480}\n{"op":"alloc","id":"${id}","size":8,"align":8}\n`;
    expect(viaBytes(text, 1 << 20)).toEqual(viaText(text));
  });

  it('answers as step() does when any one character of a fast line is not ASCII', () => {
    // a key's first byte indexes a table of 128: a byte of 0x80 or more must fall to step()
    const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
    const lines = [
      '{"op":"alloc","id":"v","size":16,"align":8,"reserved":false}',
      '{"reserved":true,"align":8,"size":16,"id":"v","op":"alloc"}',
      '{"op": "free", "id": "v"}',
      '{"id":"v","op":"free"}',
    ];
    let changed = 0;
    for (const line of lines)
      for (let k = 0; k < line.length; k++)
        for (const c of ['\u00e9', '\u0080', '\uffff']) {
          const bent = line.slice(0, k) + c + line.slice(k + 1);
          const text = `${BOOT}\n{"op":"slab_online"}\n{"op":"alloc","id":"v","size":8,"align":8}\n${bent}\n`;
          expect(viaBytes(text, 1 << 20), bent).toEqual(viaText(text));
          changed++;
        }
    expect(changed).toBeGreaterThan(400);
  });

  it('writes every line whole, with the room left in its block a byte more or less than it needs', () => {
    // the first block filled to r bytes short of its end, by an id of the right length and
    // many allocations freed last (a free asks for the room it takes, an allocation for more);
    // r then runs, for each kind of line, from none to a few bytes past the line's length
    const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
    const BLOCK = 1 << 18;
    const fill = Array.from({ length: 520 }, (_, i) => `f${String(i).padStart(4, '0')}${'z'.repeat(200)}`);
    const head = (j: number) =>
      `${BOOT}\n{"op":"slab_online"}\n{"op":"alloc","id":"v","size":8,"align":8}\n` +
      `{"op":"alloc","id":"${'y'.repeat(j)}","size":8,"align":8}\n` +
      fill.map((id) => `{"op":"alloc","id":"${id}","size":16,"align":8}\n`).join('') +
      fill.map((id) => `{"op":"free","id":"${id}"}\n`).join('');
    const base = viaText(head(1)).out.length - 1; // the head's output, less the adjusting id
    const kinds = [
      '{"op":"alloc","id":"w","size":16,"align":8}',
      '{"op":"alloc","id":"w","size":16,"align":8,"reserved":true}',
      '{"op":"alloc","id":"w","size":0,"align":8}',
      '{"op":"free","id":"v"}',
    ];
    let cases = 0;
    for (const kind of kinds) {
      const own = viaText(head(1) + kind + '\n').out.length - base - 1;
      for (let r = 0; r <= own + 3; r++) {
        const text = head(BLOCK - base - r) + kind + '\n';
        const want = viaText(text).out;
        const input = Buffer.from(text);
        const blocks: Buffer[] = [];
        let at = 0;
        const read = (into: Buffer, pos: number): number => {
          const n = input.copy(into, pos, at);
          at += n;
          return n;
        };
        const out = new ByteLines((b) => blocks.push(Buffer.from(b)) < 0);
        finish(replayBytes(read, out, (b) => b.toString('utf8'), { memoryBytes: 256 << 20 }));
        // the premise: the head fills the first block to r bytes short; the line goes in only if
        // it fits (an allocation asks for room for the longest chunk and offset)
        const sizes = blocks.map((b) => b.length);
        expect(own <= r ? [[BLOCK - r + own], [BLOCK - r, own]] : [[BLOCK - r, own]]).toContainEqual(sizes);
        expect(Buffer.concat(blocks).toString('utf8') === want, `${kind}, ${r} bytes left`).toBe(true);
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(200);
  });
});
