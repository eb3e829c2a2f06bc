/**
 * percpu tracepoint logs: every prefix variant and field generation parses to the same events,
 * other lines are counted, a malformed percpu line names its line and field, frees match their
 * allocations by pointer, --to-jsonl round-trips through replay, and a fixture replays on the
 * SMP machine with every checker clean.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FtraceError, parseFtrace, toReplayOps } from '../../src/trace/ftrace.ts';
import { replayText } from '../../src/trace/replay.ts';
import { compareFtrace } from '../../src/report/ftrace-report.ts';
import { ftraceSmp } from '../../src/smp/ftrace-smp.ts';

const FIELDS_414 = 'reserved=0 is_atomic=0 size=48 align=8 base_addr=00000000fa92a086 off=32672 ptr=000000008da0b73d';
const FIELDS_519 =
  'call_site=alloc_vfsmnt+0x7e/0x1e0 reserved=1 is_atomic=1 size=48 align=8 base_addr=ffffc8ff00000000 off=32672 ptr=ffffc8ff00007fa0 bytes_alloc=384 gfp_flags=GFP_KERNEL|__GFP_ZERO';

describe('parsing', () => {
  it('reads every prefix variant', () => {
    const prefixes = [
      '          systemd-1     [000] ....     0.568931:', // tracefs, 4-char flags
      '          systemd-1     [000] d..1.     0.568931:', // 5-char flags
      '          systemd-1     [000]     0.568931:', // no flags column (trace-cmd report)
      '          systemd-1 (      1) [000] ....     0.568931:', // with the tgid column
      ' kworker/u16:3 worker-1 [000] dNs.    0.568931:', // a task name with spaces and dashes
    ];
    for (const p of prefixes) {
      const r = parseFtrace(`${p} percpu_alloc_percpu: ${FIELDS_414}`);
      expect(r.events).toEqual([
        {
          kind: 'alloc',
          line: 1,
          cpu: 0,
          ts: 0.568931,
          comm: p.includes('kworker') ? 'kworker/u16:3 worker' : 'systemd',
          reserved: false,
          atomic: false,
          size: 48,
          align: 8,
          base: '00000000fa92a086',
          off: 32672,
          ptr: '000000008da0b73d',
          callSite: null,
          bytesAlloc: null,
          gfp: null,
        },
      ]);
    }
  });

  it('reads every field generation of every event', () => {
    const text = [
      `  insmod-7 [003] .... 12.000001: percpu_alloc_percpu: ${FIELDS_519}`,
      '  insmod-7 [003] .... 12.000002: percpu_free_percpu: base_addr=ffffc8ff00000000 off=32672 ptr=ffffc8ff00007fa0',
      '  insmod-7 [003] .... 12.000003: percpu_alloc_percpu_fail: reserved=1 is_atomic=0 size=40000 align=64',
      '  insmod-7 [003] .... 12.000004: percpu_alloc_percpu_fail: reserved=0 is_atomic=1 size=16 align=8 do_warn=1, warn_limit=9',
      '  kworker/3:1-77 [003] .... 12.000005: percpu_create_chunk: base_addr=00000000c0ffee00',
      '  kworker/3:1-77 [003] .... 12.000006: percpu_destroy_chunk: base_addr=00000000c0ffee00',
    ].join('\n');
    const ev = parseFtrace(text).events;
    expect(ev.map((e) => e.kind)).toEqual(['alloc', 'free', 'fail', 'fail', 'create_chunk', 'destroy_chunk']);
    expect(ev[0]).toMatchObject({
      reserved: true,
      atomic: true,
      callSite: 'alloc_vfsmnt+0x7e/0x1e0',
      bytesAlloc: 384,
      gfp: 'GFP_KERNEL|__GFP_ZERO',
      cpu: 3,
    });
    expect(ev[2]).toMatchObject({ kind: 'fail', size: 40000, align: 64, doWarn: null });
    expect(ev[3]).toMatchObject({ kind: 'fail', atomic: true, doWarn: true });
    expect(ev[4]).toMatchObject({ kind: 'create_chunk', base: '00000000c0ffee00', comm: 'kworker/3:1' });
  });

  it('skips and counts comments, headers and other events; the CPU count comes from the lines or the header', () => {
    const r = parseFtrace(
      [
        '# tracer: nop',
        'version = 6',
        'cpus=8',
        'CPU 5 is empty',
        '',
        '  bash-9 [002] .... 1.5: sched_switch: prev_comm=bash',
        `  bash-9 [002] .... 1.6: percpu_alloc_percpu: ${FIELDS_414}`,
      ].join('\n'),
    );
    expect(r).toMatchObject({ otherEvents: 1, comments: 5, cpus: 8 });
    expect(r.events).toHaveLength(1);
  });

  it('the newline that ends a file is no comment line; a blank line before it still is one', () => {
    const event = `  bash-9 [002] .... 1.6: percpu_alloc_percpu: ${FIELDS_414}`;
    // two comment lines, one event, as a capture written to a file ends
    expect(parseFtrace(`# tracer: nop\n#\n${event}\n`)).toMatchObject({ comments: 2, otherEvents: 0 });
    expect(parseFtrace(`# tracer: nop\n#\n${event}`)).toMatchObject({ comments: 2 });
    expect(parseFtrace(`# tracer: nop\n#\n${event}\n\n`)).toMatchObject({ comments: 3 });
    expect(parseFtrace('')).toMatchObject({ comments: 0, otherEvents: 0 });
  });

  it('names the line and the field of a malformed percpu line, and escapes what it quotes', () => {
    const bad = (line: string) => () => parseFtrace(`# ok\n${line}`);
    expect(bad(`  a-1 [000] .... 1.0: percpu_alloc_percpu: ${FIELDS_414.replace('size=48', 'size=4x8')}`)).toThrow(
      'line 2: size: expected a whole number >= 0, got "4x8"',
    );
    expect(
      bad(`  a-1 [000] .... 1.0: percpu_alloc_percpu: ${FIELDS_414.replace(' ptr=000000008da0b73d', '')}`),
    ).toThrow('line 2: ptr: percpu_alloc_percpu has no ptr= field');
    expect(bad('  a-1 [000] .... 1.0: percpu_free_percpu: base_addr=zz off=1 ptr=00')).toThrow(
      'line 2: base_addr: expected a pointer in hex, got "zz"',
    );
    expect(bad('garbage \x1b[31m percpu_free_percpu: base_addr=00 off=1 ptr=00')).toThrow(
      'line 2: prefix: a percpu_free_percpu line without the task-pid [cpu] timestamp prefix: "garbage \\x1b[31m percpu_free_percpu',
    );
    expect(bad('  a-1 [000] .... 1.0: percpu_alloc_percpu_fail: reserved=2 is_atomic=0 size=1 align=1')).toThrow(
      FtraceError,
    );
    const lenient = parseFtrace(
      `  a-1 [000] .... 1.0: percpu_free_percpu: off=1\n  a-1 [000] .... 1.1: percpu_create_chunk: base_addr=01`,
      { lenient: true },
    );
    expect(lenient.malformed).toEqual([
      { line: 1, message: 'line 1: base_addr: percpu_free_percpu has no base_addr= field' },
    ]);
    expect(lenient.events).toHaveLength(1);
  });
});

describe('replay operations', () => {
  it('match frees to allocations by pointer and count frees from before the trace', () => {
    const text = [
      `  a-1 [001] .... 1.0: percpu_alloc_percpu: ${FIELDS_414}`,
      '  a-1 [001] .... 1.1: percpu_free_percpu: base_addr=00000000fa92a086 off=5 ptr=00000000deadbeef',
      '  a-1 [000] .... 1.2: percpu_free_percpu: base_addr=00000000fa92a086 off=32672 ptr=000000008da0b73d',
      '  a-1 [000] .... 1.3: percpu_alloc_percpu_fail: reserved=1 is_atomic=0 size=100 align=8',
    ].join('\n');
    const ops = toReplayOps(parseFtrace(text).events, {
      static_size: 20000,
      reserved_size: 8192,
      dyn_size: 20480,
      cpus: 2,
    });
    expect(ops.lines).toEqual([
      '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480,"cpus":2}',
      '{"op":"slab_online"}',
      '{"op":"init_late"}',
      '{"op":"alloc","id":"a1","size":48,"align":8}',
      '{"op":"free","id":"a1"}',
      '{"op":"alloc","id":"f4","size":100,"align":8,"reserved":true}',
    ]);
    expect(ops).toMatchObject({ allocs: 1, frees: 1, failedAllocs: 1, unmatchedFrees: 1 });
  });

  it.each(['boot-4.14.trace', 'workload-5.19.report', 'pipe-6.1.txt'])(
    '%s: --to-jsonl round-trips through replay to the same placements',
    (name) => {
      const file = `test/fixtures/ftrace/${name}`;
      const cli = (args: string[], input?: string) =>
        spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', input, timeout: 60_000 });
      const jsonl = cli(['ftrace', file, '--to-jsonl']);
      expect(jsonl.status).toBe(0);
      const parsed = parseFtrace(readFileSync(file, 'utf8'));
      const ops = toReplayOps(parsed.events, {
        static_size: 20000,
        reserved_size: 8192,
        dyn_size: 20480,
        cpus: parsed.cpus,
      });
      expect(jsonl.stdout.trimEnd().split('\n')).toEqual(ops.lines);
      const viaCli = cli(['replay', '-'], jsonl.stdout);
      expect(viaCli.status).toBe(0);
      const inProcess: string[] = [];
      replayText(ops.lines.join('\n'), (l) => inProcess.push(l));
      expect(viaCli.stdout.trimEnd().split('\n')).toEqual(inProcess);
      // and the comparison counts what the replay placed
      const c = compareFtrace(parsed, ops);
      const placed = inProcess.filter((l) => l.includes('"op":"alloc"') && !l.includes('"chunk":null')).length;
      expect(c.kernel_2_6_36.allocations).toBe(placed);
      expect(c.traced.allocations).toBe(parsed.events.filter((e) => e.kind === 'alloc').length);
    },
  );

  it('the workload fixture shows the traced kernel creating and destroying chunks beside 2.6.36', () => {
    const parsed = parseFtrace(readFileSync('test/fixtures/ftrace/workload-5.19.report', 'utf8'));
    const c = compareFtrace(
      parsed,
      toReplayOps(parsed.events, { static_size: 20000, reserved_size: 8192, dyn_size: 20480, cpus: parsed.cpus }),
    );
    expect(c.events).toEqual({ alloc: 138, free: 60, fail: 1, create_chunk: 5, destroy_chunk: 4 });
    expect(c.cpus).toBe(8);
    expect(c.traced).toMatchObject({
      chunks_created: 5,
      chunks_destroyed: 4,
      allocations: 138,
      failed: 1,
      populated_pages_at_end: null,
    });
    expect(c.kernel_2_6_36.reasons).toEqual({ 'alloc from reserved chunk failed': 1 });
  });
});

describe('command line', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 60_000 });

  it('exits 2 naming the line and field of a malformed percpu line', () => {
    const r = spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'ftrace', '-'], {
      encoding: 'utf8',
      input: '# x\n  a-1 [000] .... 1.0: percpu_free_percpu: base_addr=01 off=no ptr=02\n',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('percpu-sim ftrace: <stdin>: line 2: off: expected a whole number, got "no"\n');
    expect(cli('ftrace', 'test/fixtures/ftrace/README.md').stderr).toContain('holds no percpu events');
    expect(cli('ftrace', 'test/fixtures/ftrace/pipe-6.1.txt', '--cpus', '1').status).toBe(2);
  });

  it('prints the side-by-side comparison and its JSON', () => {
    const r = cli('ftrace', 'test/fixtures/ftrace/pipe-6.1.txt');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /^percpu-sim ftrace test\/fixtures\/ftrace\/pipe-6.1.txt: 75 allocations, 29 frees, 1 failure, 3 chunks created and 2 destroyed, on 2 CPUs\n/,
    );
    expect(r.stdout).toMatch(/\nchunks created +3 +\d+\n/);
    const j = JSON.parse(cli('ftrace', 'test/fixtures/ftrace/pipe-6.1.txt', '--json').stdout) as {
      traced: { chunks_destroyed: number };
    };
    expect(j.traced.chunks_destroyed).toBe(2);
  });
});

describe('on the SMP machine', () => {
  it('replays a fixture on worker threads, each CPU issuing its own operations in trace order, every checker clean', async () => {
    const parsed = parseFtrace(readFileSync('test/fixtures/ftrace/pipe-6.1.txt', 'utf8'));
    const ops = toReplayOps(parsed.events, { static_size: 20000, reserved_size: 8192, dyn_size: 20480, cpus: 2 });
    const r = await ftraceSmp(parsed.events, ops, { cpus: 2, seed: 3, memoryMiB: 64 });
    if ('refused' in r) throw new Error(r.refused);
    expect(r.ops).toBe(ops.sources.length);
    expect(r.report.violations).toEqual([]);
    expect(r.report.verdict).toBe('pass');
  }, 60_000);
});
