/**
 * The model's replayer against the two other implementations of the replay format: the
 * independent C build (bench/ref/percpu-ref.c) and the simulator's `replayText`, on the
 * differential test's random traces (same seeds, same sizes). Every output line must agree:
 * each placement, each failure and its reason. Bad lines must stop all of them at the same
 * line with the same message.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplayError, replayOnModel } from '../../src/model/replay.ts';
import { BadInput, replayText } from '../../src/trace/replay.ts';
import { randomTrace } from '../replay/random-trace.ts';

const source = fileURLToPath(new URL('../../bench/ref/percpu-ref.c', import.meta.url));
let dir = '';
let ref = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pcpu-model-'));
  ref = join(dir, 'percpu-ref');
  execFileSync('cc', ['-O2', '-o', ref, source]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectSameLines(got: string[], want: string[], who: string): void {
  expect(got.length, `${who}: number of lines`).toBe(want.length);
  for (let i = 0; i < got.length; i++)
    if (got[i] !== want[i]) expect(`line ${i + 1}: ${got[i]}`).toBe(`line ${i + 1} (${who}): ${want[i]}`);
}

describe('the model replays traces as the C reference and the simulator do', () => {
  it.each(Array.from({ length: 40 }, (_, i) => i + 1))('random trace %i', (seed) => {
    const text = randomTrace(seed, seed > 30 ? 20_000 : 2500);
    const file = join(dir, `t${seed}.jsonl`);
    writeFileSync(file, text);
    const model: string[] = [];
    replayOnModel(text, (l) => model.push(l));
    const c = execFileSync(ref, [file], { encoding: 'utf8', maxBuffer: 1 << 28 })
      .trimEnd()
      .split('\n');
    expectSameLines(model, c, 'percpu-ref.c');
    const sim: string[] = [];
    replayText(text, (l) => sim.push(l), { memoryBytes: 256 << 20 });
    expectSameLines(model, sim, 'replayText');
    // the traces reach what they are for: failures before slab, created chunks, reclaim
    expect(model.some((l) => l.includes('"error"'))).toBe(true);
  });
});

const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';

/** Both replayers on the same text: the lines written and the message they stop with. */
function both(lines: string[]): { model: [string[], string]; sim: [string[], string] } {
  const text = lines.join('\n');
  const run = (f: (t: string, w: (l: string) => void) => void): [string[], string] => {
    const out: string[] = [];
    try {
      f(text, (l) => out.push(l));
    } catch (e) {
      if (!(e instanceof ReplayError || e instanceof BadInput)) throw e;
      return [out, e.message];
    }
    return [out, ''];
  };
  return { model: run(replayOnModel), sim: run((t, w) => replayText(t, w)) };
}

describe('bad lines stop the model where they stop the simulator, with its message', () => {
  it.each([
    [[]],
    [['{"op":"alloc","id":"a","size":8,"align":8}']],
    [[BOOT, BOOT]],
    [[BOOT, '{"op":"free","id":"zz"}']],
    [[BOOT, '{"op":"alloc","id":"a","size":8,"align":8}', '{"op":"alloc","id":"a","size":8,"align":8}']],
    [[BOOT, '{"op":"alloc","id":"a","size":8,"align":8}', '{"op":"free","id":"a"}', '{"op":"free","id":"a"}']],
    [[BOOT, '{"op":"alloc","id":"a","size":08,"align":8}']],
    [[BOOT, '[1,2]']],
    [[BOOT, '{"id":"a"}']],
    [[BOOT, '{"op":"realloc"}']],
    [[BOOT, '{"op":"alloc","id":7,"size":8,"align":8}']],
    [[BOOT, '{"op":"alloc","id":"a","align":8}']],
    [[BOOT, '{"op":"alloc","id":"a","size":1.5,"align":8}']],
    [[BOOT, '{"op":"alloc","id":"a","size":1e400,"align":8}']],
    [[BOOT, '{"op":"alloc","id":"a","size":-1,"align":8}']],
    [[BOOT, '{"op":"alloc","id":"a","size":8,"align":8,"reserved":1}']],
    [[BOOT, '{"op":"init_late"}']],
    [[BOOT, '{"op":"slab_online"}', '{"op":"slab_online"}']],
    [[BOOT, '{"op":"slab_online"}', '{"op":"init_late"}', '{"op":"init_late"}']],
    [['{"op":"boot","static_size":0,"reserved_size":0,"dyn_size":0}']],
    [['{"op":"boot","static_size":100,"reserved_size":0,"dyn_size":0,"atom_size":12288}']],
    [['{"op":"boot","static_size":100,"reserved_size":0,"dyn_size":0,"backend":"kv"}']],
    [['{"op":"boot","static_size":100,"reserved_size":0,"dyn_size":0,"cpus":1025}']],
    [['{"op":"boot","static_size":100,"reserved_size":0,"dyn_size":0,"nodes":2,"backend":"km"}']],
  ])('%j', (lines) => {
    const r = both(lines);
    expect(r.model).toEqual(r.sim);
    expect(r.model[1]).not.toBe('');
  });

  it('a failed allocation frees as NULL and its id may be used again, as in the simulator', () => {
    const r = both([
      BOOT,
      '{"op":"alloc","id":"a","size":0,"align":8}',
      '{"op":"free","id":"a"}',
      '{"op":"alloc","id":"a","size":70000,"align":8}',
      '{"op":"alloc","id":"a","size":8,"align":3}',
      '',
      '{"op":"free","id":"a"}\r',
    ]);
    expect(r.model).toEqual(r.sim);
    expect(r.model[0]).toEqual([
      '{"op":"boot","unit_size":65536,"static_size":20000,"reserved_size":8192,"dyn_size":20960}',
      '{"op":"alloc","id":"a","chunk":null,"error":"illegal size (0) or align (8) for percpu allocation"}',
      '{"op":"free","id":"a"}',
      '{"op":"alloc","id":"a","chunk":null,"error":"illegal size (70000) or align (8) for percpu allocation"}',
      '{"op":"alloc","id":"a","chunk":0,"offset":28192}',
      '{"op":"free","id":"a"}',
    ]);
  });
});
