/**
 * `percpu-sim replay`: the public trace contract (docs/replay-format.md). Output lines,
 * chunk numbering, failures with the kernel's reasons, and bad input with exit status 2.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadInput, replayText } from '../../src/trace/replay.ts';

const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
const run = (...lines: string[]): string[] => {
  const out: string[] = [];
  replayText(lines.join('\n'), (l) => out.push(l), { memoryBytes: 64 << 20 });
  return out;
};

describe('replay', () => {
  it('reproduces the example of the format', () => {
    expect(
      run(
        BOOT,
        '{"op":"alloc","id":"a1","size":16,"align":8}',
        '{"op":"alloc","id":"m1","size":100,"align":8,"reserved":true}',
        '{"op":"free","id":"a1"}',
        '{"op":"slab_online"}',
        '{"op":"init_late"}',
      ),
    ).toEqual([
      '{"op":"boot","unit_size":65536,"static_size":20000,"reserved_size":8192,"dyn_size":20960}',
      '{"op":"alloc","id":"a1","chunk":0,"offset":28192}',
      '{"op":"alloc","id":"m1","chunk":"reserved","offset":20000}',
      '{"op":"free","id":"a1"}',
      '{"op":"slab_online"}',
      '{"op":"init_late"}',
    ]);
  });

  it('fails early allocations that need a new chunk or a bigger map, with the reason', () => {
    const lines = [BOOT, '{"op":"alloc","id":"big","size":30000,"align":8}'];
    for (let i = 0; i < 126; i++) lines.push(`{"op":"alloc","id":"s${i}","size":4,"align":4}`);
    const out = run(...lines);
    expect(out[1]).toBe('{"op":"alloc","id":"big","chunk":null,"error":"failed to allocate new chunk"}');
    expect(out[126]).toBe('{"op":"alloc","id":"s124","chunk":0,"offset":28688}');
    expect(out[127]).toBe('{"op":"alloc","id":"s125","chunk":null,"error":"failed to extend area map"}');
  });

  it('numbers created chunks in order, never reusing a number, and reclaims all but one empty chunk', () => {
    const out = run(
      BOOT,
      '{"op":"slab_online"}',
      '{"op":"alloc","id":"a","size":60000,"align":8}',
      '{"op":"alloc","id":"b","size":60000,"align":8}',
      '{"op":"free","id":"a"}',
      '{"op":"free","id":"b"}',
      '{"op":"alloc","id":"c","size":60000,"align":8}',
      '{"op":"alloc","id":"d","size":60000,"align":8}',
      '{"op":"alloc","id":"e","size":65536,"align":4096}',
    );
    expect(out.slice(2).map((l) => JSON.parse(l).chunk)).toEqual([1, 2, undefined, undefined, 2, 3, 4]);
  });

  it('answers illegal sizes and alignments with the kernel warning text', () => {
    const out = run(
      BOOT,
      '{"op":"alloc","id":"z","size":0,"align":8}',
      '{"op":"alloc","id":"h","size":65537,"align":8}',
      '{"op":"alloc","id":"p","size":8,"align":8192}',
      '{"op":"alloc","id":"q","size":8,"align":0}',
      '{"op":"free","id":"z"}',
    );
    expect(out.slice(1)).toEqual([
      '{"op":"alloc","id":"z","chunk":null,"error":"illegal size (0) or align (8) for percpu allocation"}',
      '{"op":"alloc","id":"h","chunk":null,"error":"illegal size (65537) or align (8) for percpu allocation"}',
      '{"op":"alloc","id":"p","chunk":null,"error":"illegal size (8) or align (8192) for percpu allocation"}',
      '{"op":"alloc","id":"q","chunk":null,"error":"illegal size (8) or align (0) for percpu allocation"}',
      '{"op":"free","id":"z"}',
    ]);
  });

  it("rounds an alignment that is not a power of two with ALIGN()'s mask, as 2.6.36 does", () => {
    // after 5 bytes at 28192 the next offset is 28197; align 3 clears bit 1 (28197 has it
    // clear already); align 6 clears bits 0 and 2 of 28205 + 5 = 28210
    const out = run(
      BOOT,
      '{"op":"alloc","id":"a","size":5,"align":1}',
      '{"op":"alloc","id":"q","size":8,"align":3}',
      '{"op":"alloc","id":"s","size":8,"align":6}',
    );
    expect(out.slice(1)).toEqual([
      '{"op":"alloc","id":"a","chunk":0,"offset":28192}',
      '{"op":"alloc","id":"q","chunk":0,"offset":28197}',
      '{"op":"alloc","id":"s","chunk":0,"offset":28210}',
    ]);
  });

  it('lets an id be reused once freed, or after its allocation failed', () => {
    const out = run(
      BOOT,
      '{"op":"alloc","id":"x","size":8,"align":8}',
      '{"op":"free","id":"x"}',
      '{"op":"alloc","id":"x","size":8,"align":8}',
      '{"op":"alloc","id":"y","size":0,"align":8}',
      '{"op":"alloc","id":"y","size":8,"align":8}',
    );
    expect(out.slice(3).map((l) => JSON.parse(l).offset)).toEqual([28192, undefined, 28200]);
  });

  it('runs the km backend and more CPUs when boot asks', () => {
    const out = run(
      '{"op":"boot","static_size":4096,"reserved_size":0,"dyn_size":0,"cpus":3,"backend":"km","atom_size":4096}',
      '{"op":"alloc","id":"a","size":8,"align":8}',
    );
    expect(out).toEqual([
      '{"op":"boot","unit_size":65536,"static_size":4096,"reserved_size":0,"dyn_size":12288}',
      '{"op":"alloc","id":"a","chunk":0,"offset":4096}',
    ]);
  });

  const bad: [string[], number, string][] = [
    [['{"op":"alloc","id":"a","size":8,"align":8}'], 1, '"alloc" before "boot" (boot must come first)'],
    [[BOOT, BOOT], 2, '"boot" may appear only once'],
    [[BOOT, 'nonsense'], 2, 'not valid JSON'],
    [[BOOT, '[1]'], 2, 'expected a JSON object'],
    [[BOOT, '{"id":"a"}'], 2, 'missing "op"'],
    [[BOOT, '{"op":"grow"}'], 2, 'unknown op "grow"'],
    [[BOOT, '{"op":"alloc","id":"a","size":8}'], 2, 'missing "align"'],
    [[BOOT, '{"op":"alloc","id":7,"size":8,"align":8}'], 2, '"id" must be a string, got 7'],
    [[BOOT, '{"op":"alloc","id":"a","size":1.5,"align":8}'], 2, '"size" must be an integer, got 1.5'],
    [[BOOT, '{"op":"alloc","id":"a","size":8,"align":8,"reserved":"yes"}'], 2, '"reserved" must be true or false'],
    [
      [BOOT, '{"op":"alloc","id":"a","size":8,"align":8}', '{"op":"alloc","id":"a","size":8,"align":8}'],
      3,
      'id "a" is still live',
    ],
    [[BOOT, '{"op":"free","id":"nope"}'], 2, 'id "nope" was never allocated'],
    [
      [BOOT, '{"op":"alloc","id":"a","size":8,"align":8}', '{"op":"free","id":"a"}', '{"op":"free","id":"a"}'],
      4,
      'id "a" is already freed',
    ],
    [[BOOT, '{"op":"init_late"}'], 2, '"init_late" before "slab_online"'],
    [[BOOT, '{"op":"slab_online"}', '{"op":"slab_online"}'], 3, '"slab_online" may appear only once'],
    [
      ['{"op":"boot","static_size":0,"reserved_size":0,"dyn_size":0}'],
      1,
      '"static_size" must be in [1, 16777216], got 0',
    ],
    [
      ['{"op":"boot","static_size":100,"reserved_size":0,"dyn_size":0,"backend":"xx"}'],
      1,
      '"backend" must be "vm" or "km"',
    ],
    [
      ['{"op":"boot","static_size":100,"reserved_size":0,"dyn_size":0,"atom_size":12288}'],
      1,
      '"atom_size" must be a power of two',
    ],
  ];
  it.each(bad)('stops at bad input: %j', (lines, line, what) => {
    const out: string[] = [];
    let err: unknown;
    try {
      replayText(lines.join('\n'), (l) => out.push(l), { memoryBytes: 64 << 20 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadInput);
    expect((err as BadInput).line).toBe(line);
    expect((err as BadInput).message).toContain(`line ${line}: ${what}`);
    expect(out).toHaveLength(line - 1 - lines.slice(0, line - 1).filter((l) => l === '').length);
  });

  it('warns once when the replay machine itself runs out of memory', () => {
    const lines = [BOOT, '{"op":"slab_online"}'];
    for (let i = 0; i < 300; i++) lines.push(`{"op":"alloc","id":"b${i}","size":65536,"align":4096}`);
    const warnings: string[] = [];
    const out: string[] = [];
    replayText(lines.join('\n'), (l) => out.push(l), {
      memoryBytes: 64 << 20,
      onResourceLimit: (m) => warnings.push(m),
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^line \d+: the replay machine ran out of physical memory \("failed to populate"\)/);
    expect(out.at(-1)).toContain('"error":"failed to populate"');
  });

  it('skips blank lines and accepts CRLF', () => {
    expect(run(BOOT + '\r', '', '  ', '{"op":"slab_online"}\r')).toHaveLength(2);
  });
});

describe('replay command line', () => {
  const cli = (args: string[], input?: string) =>
    spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { input, encoding: 'utf8', timeout: 30_000 });

  it('reads standard input and prints the lines before a bad one, then exits 2', () => {
    const r = cli(
      ['replay', '-', '--memory', '64'],
      [BOOT, '{"op":"alloc","id":"a","size":16,"align":8}', '{"op":"free","id":"b"}', BOOT].join('\n'),
    );
    expect(r.status).toBe(2);
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
    expect(r.stderr).toBe('percpu-sim replay: <stdin>: line 3: id "b" was never allocated\n');
  });

  it('reads a file in UTF-8 when it is not plain ASCII, and as bytes when it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'percpu-replay-'));
    const ascii = join(dir, 'ascii.jsonl');
    const utf8 = join(dir, 'utf8.jsonl');
    writeFileSync(ascii, [BOOT, '{"op":"alloc","id":"a1","size":16,"align":8}'].join('\n') + '\n');
    writeFileSync(
      utf8,
      [BOOT, '{"op":"alloc","id":"é1","size":16,"align":8}', '{"op":"free","id":"é1"}'].join('\n') + '\n',
    );
    expect(cli(['replay', ascii]).stdout.trim().split('\n')[1]).toBe(
      '{"op":"alloc","id":"a1","chunk":0,"offset":28192}',
    );
    const u = cli(['replay', utf8]);
    expect(u.status).toBe(0);
    expect(u.stdout.trim().split('\n').slice(1)).toEqual([
      '{"op":"alloc","id":"é1","chunk":0,"offset":28192}',
      '{"op":"free","id":"é1"}',
    ]);
  });

  it('exits 2 with a clear message for a missing file or bad flags', () => {
    const r = cli(['replay', '/nonexistent/trace.jsonl']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^percpu-sim replay: cannot read \/nonexistent\/trace.jsonl: ENOENT/);
    const f = cli(['replay', '-', '--memory', 'lots'], '');
    expect(f.status).toBe(2);
    expect(f.stderr).toContain('--memory must be a whole number from 16 to 65536, got "lots"');
    expect(cli(['frobnicate']).status).toBe(2);
    const h = cli(['replay', '--help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toContain('Usage: percpu-sim replay FILE');
  });
});

describe('replay fast path', () => {
  const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';
  /** The same trace spelt as writers print it (fast path) and with spaces (JSON.parse path). */
  function both(ops: string[]): [string[], string[]] {
    const run = (lines: string[]) => {
      const out: string[] = [];
      replayText([BOOT, ...lines].join('\n') + '\n', (l) => out.push(l));
      return out;
    };
    return [run(ops), run(ops.map((l) => l.replace(/,"/g, ', "').replace(/":/g, '": ')))];
  }

  it('places exactly as the full parser does', () => {
    const ops: string[] = [];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const live: number[] = [];
    for (let i = 0; i < 3000; i++) {
      if (live.length && rnd(100) < 45) ops.push(`{"op":"free","id":"x${live.splice(rnd(live.length), 1)[0]}"}`);
      else {
        ops.push(`{"op":"alloc","id":"x${i}","size":${1 + rnd(3000)},"align":${1 << rnd(7)}}`);
        live.push(i);
      }
    }
    const [fast, slow] = both(ops);
    expect(fast).toEqual(slow);
    expect(fast.length).toBe(3001);
  });

  it('says the same about bad lines', () => {
    const err = (lines: string[]) => {
      try {
        replayText(lines.join('\n') + '\n', () => {});
        return '';
      } catch (e) {
        return (e as BadInput).message;
      }
    };
    expect(err(['{"op":"alloc","id":"a","size":8,"align":8}'])).toBe(
      'line 1: "alloc" before "boot" (boot must come first)',
    );
    expect(err([BOOT, '{"op":"free","id":"zz"}'])).toBe('line 2: id "zz" was never allocated');
    expect(
      err([BOOT, '{"op":"alloc","id":"a","size":8,"align":8}', '{"op":"alloc","id":"a","size":8,"align":8}']),
    ).toBe('line 3: id "a" is still live');
    expect(
      err([BOOT, '{"op":"alloc","id":"a","size":8,"align":8}', '{"op":"free","id":"a"}', '{"op":"free","id":"a"}']),
    ).toBe('line 4: id "a" is already freed');
    // not JSON, though the pattern almost matches: a leading zero
    expect(err([BOOT, '{"op":"alloc","id":"a","size":08,"align":8}'])).toMatch(/^line 2: not valid JSON/);
  });
});
