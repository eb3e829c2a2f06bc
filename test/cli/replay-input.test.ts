/**
 * What replay accepts: an operation's unknown key is refused, ids that differ only in bytes
 * that are not UTF-8 stay distinct, a byte order mark is skipped or named, and a boot line
 * with more nodes than CPUs is refused, as run refuses it. The reference model says the same.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { replayOnModel } from '../../src/model/replay.ts';
import { replayText } from '../../src/trace/replay.ts';

const replay = (input: Buffer | string, ...args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'replay', '-', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    input,
  });
const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480,"cpus":2}';
const BOOTED = '{"op":"boot","unit_size":65536,"static_size":20000,"reserved_size":8192,"dyn_size":20960}';

/** The first bad line's message from the allocator's replay and from the model's. */
function messages(text: string): [string, string] {
  const first = (f: () => void): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  return [first(() => replayText(text, () => {})), first(() => replayOnModel(text, () => {}))];
}

describe('replay input', () => {
  it('refuses a key an operation does not take', () => {
    const r = replay(`${BOOT}\n{"op":"alloc","id":"a","size":16,"align":8,"reserve":true}\n`);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe(`${BOOTED}\n`);
    expect(r.stderr).toBe(
      'percpu-sim replay: <stdin>: line 2: "alloc" has no key "reserve" (it takes id, size, align, reserved)\n',
    );
    for (const [line, what] of [
      ['{"op":"free","id":"a","size":16}', '"free" has no key "size" (it takes id)'],
      ['{"op":"slab_online","now":1}', '"slab_online" has no key "now" (it takes none but "op")'],
    ] as const) {
      const text = `${BOOT}\n{"op":"alloc","id":"a","size":16,"align":8}\n${line}\n`;
      expect(messages(text)).toEqual([`line 3: ${what}`, `line 3: ${what}`]);
    }
    expect(messages(`${BOOT.replace('}', ',"cpu":2}')}\n`)[1]).toBe(
      'line 1: "boot" has no key "cpu" (it takes static_size, reserved_size, dyn_size, cpus, nodes, atom_size, backend)',
    );
  });

  it('keeps ids that differ only in bytes that are not UTF-8 apart', () => {
    const line = (op: string, id: Buffer) =>
      Buffer.concat([
        Buffer.from(`{"op":"${op}","id":"a`),
        id,
        Buffer.from(op === 'free' ? '"}\n' : '","size":16,"align":8}\n'),
      ]);
    const r = replay(
      Buffer.concat([
        Buffer.from(`${BOOT}\n`),
        line('alloc', Buffer.from([0xff])),
        line('alloc', Buffer.from([0xfe])),
        line('free', Buffer.from([0xff])),
        line('free', Buffer.from([0xfe])),
      ]),
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        BOOTED,
        '{"op":"alloc","id":"a\\udcff","chunk":0,"offset":28192}',
        '{"op":"alloc","id":"a\\udcfe","chunk":0,"offset":28208}',
        '{"op":"free","id":"a\\udcff"}',
        '{"op":"free","id":"a\\udcfe"}',
        '',
      ].join('\n'),
    );
    // well-formed UTF-8 is read as it always was
    const utf8 = replay(`${BOOT}\n{"op":"alloc","id":"ä€𝄞","size":16,"align":8}\n`);
    expect(utf8.stdout.split('\n')[1]).toBe('{"op":"alloc","id":"ä€𝄞","chunk":0,"offset":28192}');
  });

  it('skips a byte order mark at the start, names one inside, refuses UTF-16', () => {
    const slab = '{"op":"slab_online"}';
    const r = replay(`\ufeff${BOOT}\n${slab}\n`);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${BOOTED}\n${slab}\n`);
    const inside = replay(`${BOOT}\n\ufeff${slab}\n`);
    expect(inside.status).toBe(2);
    expect(inside.stderr).toMatch(
      /^percpu-sim replay: <stdin>: line 2: not valid JSON \(Unexpected token '<U\+FEFF>'.*\) \(the line holds a byte order mark, U\+FEFF\)\n$/,
    );
    expect(inside.stderr).not.toContain('\ufeff');
    const utf16 = replay(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`${BOOT}\n`, 'utf16le')]));
    expect(utf16.status).toBe(2);
    expect(utf16.stderr.split('\n')[0]).toBe(
      'percpu-sim replay: the trace is UTF-16 (it starts with a UTF-16 byte order mark); write it as UTF-8',
    );
  });

  it('refuses more nodes than CPUs, as run does', () => {
    const r = replay(`${BOOT.replace('}', ',"nodes":3}')}\n`);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('percpu-sim replay: <stdin>: line 1: "nodes" is 3 but "cpus" is 2: every node needs a CPU\n');
    expect(messages(`${BOOT.replace('}', ',"nodes":3}')}\n`)[1]).toBe(
      'line 1: "nodes" is 3 but "cpus" is 2: every node needs a CPU',
    );
    const run = spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'run', 'demo', '--cpus', '2', '--nodes', '3'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(2);
    expect(replay(`${BOOT.replace('}', ',"nodes":2}')}\n`).status).toBe(0);
  });
});
