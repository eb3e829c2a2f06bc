/**
 * percpu-sim dmesg: real boot logs (test/fixtures/real-dmesg) and hand-written ones of each
 * header generation and of the page fallback (test/fixtures/dmesg) beside 2.6.36 on the
 * machine each describes, every difference explained.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DmesgReportSchema } from '../../src/files/dmesg.ts';
import { compareDmesg, cpuNodeRanges } from '../../src/harness/dmesg.ts';
import { inferMachine, messageOf, parseDmesg } from '../../src/trace/dmesg.ts';

const read = (dir: string, name: string): string =>
  readFileSync(new URL(`../fixtures/${dir}/${name}`, import.meta.url), 'utf8');
const compare = (dir: string, name: string) => compareDmesg(parseDmesg(read(dir, name)));
const cli = (...argv: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'dmesg', ...argv], { encoding: 'utf8', timeout: 60_000 });

describe('reading a boot log', () => {
  it('takes off timestamps, printk levels, syslog and dmesg -x prefixes', () => {
    expect(messageOf('[    0.000000] PERCPU: x')).toBe('PERCPU: x');
    expect(messageOf('<6>[12345.678901] PERCPU: x\r')).toBe('PERCPU: x');
    expect(messageOf('Mar  3 10:00:00 host kernel: [    0.000000] percpu: x')).toBe('percpu: x');
    expect(messageOf('kern  :info  : [    0.000000] pcpu-alloc: x')).toBe('pcpu-alloc: x');
    expect(messageOf('pcpu-alloc: [0] 0 ')).toBe('pcpu-alloc: [0] 0 ');
  });

  it('reads the group lines in every width, unused units included', () => {
    const p = parseDmesg(
      ['pcpu-alloc: [0] 0 1 - - ', 'pcpu-alloc: [00] 000 [01] 001 [02] --- ', 'pcpu-alloc: [1] 08 09'].join('\n'),
    );
    expect(p.units).toEqual([
      { group: 0, cpu: 0 },
      { group: 0, cpu: 1 },
      { group: 0, cpu: null },
      { group: 0, cpu: null },
      { group: 0, cpu: 0 },
      { group: 1, cpu: 1 },
      { group: 2, cpu: null },
      { group: 1, cpu: 8 },
      { group: 1, cpu: 9 },
    ]);
    expect(p.ignored).toBe(0);
  });

  it('infers the machine: CPUs, the map off the groups, sizes, atom, page size, first chunk', () => {
    const m = inferMachine(parseDmesg(read('real-dmesg', 'boot05-2.6.32el6-x86_64-32cpu-2node.log')));
    expect(m).toMatchObject({
      cpus: 32,
      nodes: 2,
      mapFrom: 'groups',
      staticSize: 94552,
      reservedSize: 8192,
      dynSize: 24232,
      atomSize: 2097152,
      pageSize: 4096,
      fc: 'embed',
      tooFar: false,
    });
    expect(cpuNodeRanges(m.cpuToNode).split(',').slice(10, 14)).toEqual(['10:0', '11-12:1', '13:0', '14:1']);
    const f = inferMachine(parseDmesg(read('dmesg', 'fallback-2.6.36-x86_64-64cpu-4node.log')));
    expect(f).toMatchObject({ cpus: 64, nodes: 4, mapFrom: 'blocks', fc: 'fallback', tooFar: true, atomSize: 4096 });
  });
});

describe('real logs beside 2.6.36', () => {
  const logs = readdirSync(new URL('../fixtures/real-dmesg/', import.meta.url)).filter((f) => f.endsWith('.log'));

  it.each(logs)('%s: no unexplained difference', (name) => {
    const c = compare('real-dmesg', name);
    expect(c.unexplained).toBe(0);
    expect(
      c.rows.filter((r) => r.kind === 'groups').every((r) => r.status === 'same' || r.status === 'explained'),
    ).toBe(true);
  });

  it('2.6.35: the address is the one difference', () => {
    const c = compare('real-dmesg', 'boot01-2.6.35-22-x86_64-6cpu.log');
    expect(c.rows.map((r) => [r.line, r.status])).toEqual([
      [2, 'input'],
      [3, 'explained'],
      [4, 'same'],
      [5, 'same'],
    ]);
    expect(c.rows[1]!.simulated).toBe('PERCPU: Embedded 30 pages/cpu @0000100000000000 s91520 r8192 d23168 u262144');
    expect(c.rows[1]!.reasons).toEqual([
      "the address is where boot memory put the first chunk on that machine, not a rule of the allocator; the simulated machine's memory map is its own",
    ]);
    expect(c.command).toBe(
      'percpu-sim boot --cpus 6 --static 91520 --reserved 8192 --dyn 23168 --atom 2097152 --memory 64',
    );
  });

  it('2.6.32 on 2 nodes: the console copy lost the trailing space of the group lines', () => {
    const c = compare('real-dmesg', 'boot05-2.6.32el6-x86_64-32cpu-2node.log');
    expect(c.rows.slice(3).map((r) => [r.status, r.reasons])).toEqual([
      ['explained', ['the copy lost the space printk leaves at the end of the line']],
      ['explained', ['the copy lost the space printk leaves at the end of the line']],
    ]);
  });

  it('4.20 on 8 nodes: the prefix and the hashed pointer, every group line the same', () => {
    const c = compare('real-dmesg', 'boot17-4.20-rc2-x86_64-288cpu-8node.log');
    expect(c.rows[1]!.reasons).toEqual([
      'a later kernel prints mm/percpu.c\'s messages as "percpu: " (pr_fmt); 2.6.36 writes "PERCPU: "',
      'the kernel hashes printed pointers (4.15 on), so the address is not shown',
    ]);
    expect(c.rows.filter((r) => r.status === 'same')).toHaveLength(41);
  });
});

describe('hand-written logs', () => {
  it('the page fallback: the warning, the fallback line and the page first chunk', () => {
    const c = compare('dmesg', 'fallback-2.6.36-x86_64-64cpu-4node.log');
    expect(c.unexplained).toBe(0);
    expect(c.rows.slice(1, 4).map((r) => [r.kind, r.status, r.simulated])).toEqual([
      ['max-distance', 'explained', 'PERCPU: max_distance=0x301f000 too large for vmalloc space 0x4000000'],
      ['fallback', 'same', 'setup_percpu: auto allocator failed (-22), falling back to page size'],
      ['header', 'explained', 'PERCPU: 31 4K pages/cpu @0000200000000000 s103040 r8192 d15744'],
    ]);
    expect(c.command).toBe(
      'percpu-sim boot --cpu-nodes 0-15:0,16-31:1,32-47:2,48-63:3 --static 103040 --reserved 8192 --dyn 15744 --atom 4096 --memory 64 --vmalloc 64',
    );
    // the command prints the simulated lines
    const out = execFileSync(process.execPath, ['bin/percpu-sim.mjs', ...c.command.split(' ').slice(1)], {
      encoding: 'utf8',
    });
    expect(out.split('\n').slice(0, -1)).toEqual(c.rows.slice(1).map((r) => r.simulated));
  });

  it('3.2: the 32 KiB minimum unit of 2.6.37 explains the unit and the allocation', () => {
    const c = compare('dmesg', 'gen-3.2-arm-32k-unit.log');
    expect(c.unexplained).toBe(0);
    expect(c.rows.map((r) => r.reasons.at(-1) ?? null)).toEqual([
      '2.6.37 lowered PCPU_MIN_UNIT_SIZE from 64 KiB to 32 KiB, so a later kernel makes smaller units',
      '2.6.37 lowered PCPU_MIN_UNIT_SIZE from 64 KiB to 32 KiB, so a later kernel makes smaller units',
      null,
    ]);
    expect(c.rows[1]!.simulated).toBe('pcpu-alloc: s5472 r8192 d15008 u65536 alloc=16*4096');
  });

  it.each([
    ['gen-2.6.36-arm-levels.log', 3, 3],
    ['gen-2.6.36-i386-page.log', 4, 2],
    ['gen-5.4-x86_64-syslog.log', 4, 3],
  ])('%s: %i percpu lines, %i others ignored, nothing unexplained', (name, percpu, ignored) => {
    const c = compare('dmesg', name);
    expect([c.percpuLines, c.ignored, c.unexplained]).toEqual([percpu, ignored, 0]);
  });

  it('5.4: no address on the line', () => {
    const c = compare('dmesg', 'gen-5.4-x86_64-syslog.log');
    expect(c.rows[1]!.reasons).toContain('a later kernel prints no address on this line');
  });
});

describe('the command', () => {
  it('--json is the comparison as data, and reads back', () => {
    const r = cli('test/fixtures/real-dmesg/boot13-2.6.32-rc3-s390x-64cpu.log', '--json');
    expect(r.status).toBe(0);
    const j = DmesgReportSchema.parse(JSON.parse(r.stdout));
    expect([j.machine.cpus, j.percpu_lines, j.ignored_lines, j.unexplained]).toEqual([64, 10, 1, 0]);
    expect(j.lines[0]).toMatchObject({ line: 2, status: 'explained', kind: 'header' });
  });

  it('exit 1 on a difference no rule explains', () => {
    // a unit of 128 KiB where 2.6.36 (and 2.6.37) make 256 KiB from the same sizes
    const bad = read('real-dmesg', 'boot01-2.6.35-22-x86_64-6cpu.log').replaceAll('u262144', 'u131072');
    const r = spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'dmesg', '-'], {
      input: bad,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('verdict: 2 difference(s) without an explanation');
    expect(r.stdout).toContain('no rule explains it: 2.6.36 on the same machine prints the simulated line');
  });

  it('exit 2 on a log with no percpu lines', () => {
    const r = cli('test/fixtures/dmesg/no-percpu.log');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      'percpu-sim dmesg: test/fixtures/dmesg/no-percpu.log holds no percpu boot lines (3 other line(s), 0 percpu line(s) of other kinds)',
    );
  });
});
