/**
 * replay FILE reads the file in blocks as it replays it: the same output as the whole trace
 * read at once, across block boundaries, with a byte order mark, bytes that are not UTF-8
 * and CRLF lines; UTF-16 and a directory are refused as before.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replayText } from '../../src/trace/replay.ts';

const dir = mkdtempSync(join(tmpdir(), 'pcpu-replay-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const replay = (file: string) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'replay', file], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 1 << 26,
  });
const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480,"cpus":2}';

describe('replay FILE', () => {
  it('writes what the whole trace read at once gives, over many blocks', () => {
    // about 3 MiB: three blocks of the reader, with lines cut at their ends
    const lines = [BOOT, '{"op":"slab_online"}'];
    for (let i = 0; i < 60_000; i++) {
      lines.push(
        `{"op":"alloc","id":"a${i}","size":${(i % 97) + 1},"align":${1 << (i % 7)}${i % 11 ? '' : ',"reserved":true'}}`,
      );
      if (i % 3 === 2) lines.push(`{"op":"free","id":"a${i - 1}"}`);
    }
    lines.splice(5000, 0, '{"op":"alloc","id":"caf\u00e9","size":8,"align":8}\r');
    const text = lines.join('\n') + '\n';
    const file = join(dir, 'long.jsonl');
    // the byte order mark is dropped, a byte that is not UTF-8 stays in its id
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(text),
        Buffer.from('{"op":"alloc","id":"x\xff","size":8,"align":8}\n', 'latin1'),
      ]),
    );
    const want: string[] = [];
    replayText(text + '{"op":"alloc","id":"x\udcff","size":8,"align":8}\n', (l) => want.push(l));
    const r = replay(file);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(want.join('\n') + '\n');
    expect(r.stdout.split('\n').at(-2)).toMatch(/^\{"op":"alloc","id":"x\\udcff","chunk":/);
  });

  it('refuses a UTF-16 file and a directory, with status 2', () => {
    const file = join(dir, 'utf16.jsonl');
    writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(BOOT + '\n', 'utf16le')]));
    const r = replay(file);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'percpu-sim replay: the trace is UTF-16 (it starts with a UTF-16 byte order mark); write it as UTF-8\nRun "percpu-sim replay --help" for usage.\n',
    );
    const d = replay(dir);
    expect(d.status).toBe(2);
    expect(d.stderr).toMatch(/^percpu-sim replay: cannot read .*: EISDIR/);
  });
});
