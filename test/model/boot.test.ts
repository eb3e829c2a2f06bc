/**
 * The model's first chunk and boot lines: against real kernels' boot logs
 * (test/fixtures/real-dmesg, see its README), against `percpu-sim boot` over a range of
 * machines (CPUs 1..64, nodes 1..4, atoms, static sizes, both backends, both first-chunk
 * builders), and a few hand-checked shapes. Where boot memory put each group is the one
 * thing the model is told.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KernelBug } from '../../src/kernel/bug.ts';
import { setup_per_cpu_areas } from '../../src/kernel/setup.ts';
import { Machine } from '../../src/mem/machine.ts';
import {
  BootFailure,
  blockNodes,
  bootFirstChunk,
  buildAllocInfo,
  dumpAllocInfo,
  nodeDistance,
} from '../../src/model/first-chunk.ts';
import { bootMachine } from '../../src/sim/boot.ts';
import { Prng } from '../../src/util/prng.ts';

const MB2 = 2 << 20;

/** The percpu lines of a log, without timestamps. */
function logLines(name: string): string[] {
  const text = readFileSync(new URL(`../fixtures/real-dmesg/${name}`, import.meta.url), 'utf8');
  return text
    .split('\n')
    .map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ''))
    .filter((l) => /^(PERCPU|percpu|pcpu-alloc):/.test(l));
}

describe('the boot lines of real kernels', () => {
  it('2.6.35 x86_64, 6 CPUs: one group of eight 256 KiB units in one 2 MiB allocation, two unused', () => {
    const { lines } = bootFirstChunk({
      cpus: 6,
      cpuToNode: blockNodes(6, 1),
      distance: null,
      staticSize: 91520,
      reservedSize: 8192,
      dynSize: 20480,
      atomSize: MB2,
      backend: 'vm',
      addrs: [0xffff880001e00000],
    });
    expect(lines).toEqual(logLines('boot01-2.6.35-22-x86_64-6cpu.log'));
  });

  it('2.6.32 x86_64, 32 CPUs on 2 nodes: a group per node, sixteen 128 KiB units an allocation', () => {
    // the CPUs of node 1, as the log's group [1] lists them (the log has no SRAT)
    const node1 = new Set([1, 3, 5, 7, 9, 11, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]);
    const cpuToNode = Array.from({ length: 32 }, (_, cpu) => (node1.has(cpu) ? 1 : 0));
    const { lines, ai } = bootFirstChunk({
      cpus: 32,
      cpuToNode,
      distance: nodeDistance(cpuToNode),
      staticSize: 94552,
      reservedSize: 8192,
      dynSize: 20480,
      atomSize: MB2,
      backend: 'vm',
      addrs: [0xffff880028200000, 0xffff880228200000],
    });
    expect(ai.groups.map((g) => g.baseOffset)).toEqual([0, 0x200000000]);
    // the console log lost the space each group line ends with
    expect(lines.map((l) => l.trimEnd())).toEqual(logLines('boot05-2.6.32el6-x86_64-32cpu-2node.log'));
  });

  it('2.6.32-rc3 s390x, 64 possible CPUs, page atom: one 64 KiB unit an allocation, eight a line', () => {
    const { lines } = bootFirstChunk({
      cpus: 64,
      cpuToNode: blockNodes(64, 1),
      distance: null,
      staticSize: 16896,
      reservedSize: 8192,
      dynSize: 20480,
      atomSize: 4096,
      backend: 'vm',
      addrs: [0x8442a000],
    });
    expect(lines).toEqual(logLines('boot13-2.6.32-rc3-s390x-64cpu.log'));
  });

  it('4.20 x86_64, 288 CPUs on 8 nodes: the same rules give its numbers and groups', () => {
    const cpuToNode = Array.from({ length: 288 }, (_, cpu) => Math.floor((cpu % 144) / 18));
    const { lines } = bootFirstChunk({
      cpus: 288,
      cpuToNode,
      distance: nodeDistance(cpuToNode),
      staticSize: 151552,
      reservedSize: 8192,
      dynSize: 28672,
      atomSize: MB2,
      backend: 'vm',
      addrs: Array.from({ length: 8 }, (_, n) => 0xffff880000000000 + n * 2 ** 36),
    });
    // 4.20 prints "percpu:" and a hashed pointer; all else is as 2.6.36 prints it
    const as420 = lines.map((l) => l.replace(/^PERCPU: (.*) @[0-9a-f]{16} /, 'percpu: $1 @(____ptrval____) '));
    expect(as420).toEqual(logLines('boot17-4.20-rc2-x86_64-288cpu-8node.log'));
  });
});

interface Shape {
  cpus: number;
  nodes: number;
  numa: boolean;
  atom: number;
  staticSize: number;
  reserved: number;
  dyn: number;
  backend: 'vm' | 'km';
  fc: 'embed' | 'page';
}

/** A range of machines: every CPU count 1..64 once, the rest drawn from a fixed seed. */
function shapes(): Shape[] {
  const r = new Prng(2636);
  return Array.from({ length: 64 }, (_, i) => {
    const cpus = i + 1;
    const backend = r.pick(['vm', 'km'] as const);
    const fc = backend === 'vm' && r.chance(0.15) ? 'page' : 'embed';
    const nodes = Math.min(cpus, r.int(1, 4));
    return {
      cpus,
      nodes,
      numa: nodes > 1 && backend === 'vm' && fc === 'embed' && r.chance(0.7),
      atom: r.pick([4096, 1 << 16, 1 << 20, MB2]),
      staticSize: r.pick([1000, 20000, 91520, r.int(1, 300000)]),
      reserved: r.pick([0, 8192, 12000]),
      dyn: r.pick([0, 20480, 28672, 100000]),
      backend,
      fc,
    };
  });
}

/** The simulator's boot of a shape: its lines, where its groups went, its unit tables. */
function simBoot(s: Shape) {
  const { machine, pc } = bootMachine({
    cpus: s.cpus,
    nodes: s.nodes,
    backend: s.backend,
    fc: s.fc,
    memoryMiB: 1024,
    numaGroups: s.numa,
    contents: false,
    sizes: { static_size: s.staticSize, reserved_size: s.reserved, dyn_size: s.dyn, atom_size: s.atom },
  });
  const addrs = pc.pcpu_group_offsets.map((o) => pc.pcpu_base_addr + o);
  return { machine, pc, addrs };
}

function modelBoot(s: Shape, machine: Machine, addrs: number[]) {
  return bootFirstChunk({
    cpus: s.cpus,
    cpuToNode: machine.cpuToNodeMap,
    distance: s.numa ? nodeDistance(machine.cpuToNodeMap) : null,
    staticSize: s.staticSize,
    reservedSize: s.reserved,
    dynSize: s.dyn,
    atomSize: s.atom,
    backend: s.backend,
    fc: s.fc,
    addrs,
    vmallocSize: machine.vm.end - machine.vm.start,
  });
}

describe('the boot lines of percpu-sim boot', () => {
  it.each(shapes())('%o', (s) => {
    const { machine, pc, addrs } = simBoot(s);
    const { lines, model, unitOffsets } = modelBoot(s, machine, addrs);
    expect(lines).toEqual(pc.dmesg);
    expect(unitOffsets).toEqual(pc.pcpu_unit_offsets);
    expect(model.layout.cpuToUnit).toEqual(pc.pcpu_unit_map);
    expect([model.layout.unitSize, model.layout.dynSize, model.nrSlots]).toEqual([
      pc.pcpu_unit_size,
      pc.pcpu_dyn_size,
      pc.pcpu_nr_slots,
    ]);
  });

  it('percpu-km refuses sparse groups with the lines the simulator prints', () => {
    const printed: string[] = [];
    const machine = new Machine({ cpus: 4, nodes: 2, memoryBytes: 64 << 20 });
    const log = { printk: (l: string) => printed.push(l), warn: (l: string) => printed.push(`WARNING: ${l}`) };
    expect(() => setup_per_cpu_areas(machine, { backend: 'km', numa_groups: true, log })).toThrow(KernelBug);
    let failure: unknown;
    try {
      modelBoot(
        {
          cpus: 4,
          nodes: 2,
          numa: true,
          atom: 4096,
          staticSize: 20000,
          reserved: 8192,
          dyn: 20480,
          backend: 'km',
          fc: 'embed',
        },
        machine,
        [0x100000000000, 0x100000020000],
      );
    } catch (e) {
      failure = e;
    }
    expect(failure).toBeInstanceOf(BootFailure);
    expect((failure as BootFailure).message).toBe('PERCPU: failed to initialize, pcpu_verify_alloc_info(ai) < 0');
    expect((failure as BootFailure).lines).toEqual(printed);
    expect(printed.slice(1, 4)).toEqual([
      "percpu: can't handle more than one groups",
      'PERCPU: failed to initialize, pcpu_verify_alloc_info(ai) < 0',
      'PERCPU: cpu_possible_mask=0-3',
    ]);
  });

  it.each([
    ['--cpus', '8', '--nodes', '2', '--numa', '--atom', '2097152'],
    ['--cpus', '6', '--backend', 'km', '--static', '91520'],
    ['--cpus', '4', '--fc', 'page', '--reserved', '0'],
  ])("the command prints the model's lines: percpu-sim boot %s", (...argv) => {
    const out = execFileSync(process.execPath, ['bin/percpu-sim.mjs', 'boot', ...argv], { encoding: 'utf8' });
    const arg = (flag: string, dflt: number): number =>
      argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : dflt;
    const s: Shape = {
      cpus: arg('--cpus', 4),
      nodes: arg('--nodes', 1),
      numa: argv.includes('--numa'),
      atom: arg('--atom', 4096),
      staticSize: arg('--static', 20000),
      reserved: arg('--reserved', 8192),
      dyn: 20480,
      backend: argv.includes('km') ? 'km' : 'vm',
      fc: argv.includes('page') ? 'page' : 'embed',
    };
    const { machine, addrs } = simBoot({ ...s });
    expect(out).toBe(modelBoot(s, machine, addrs).lines.join('\n') + '\n');
  });
});

describe('pcpu_build_alloc_info by hand', () => {
  it('grows the unit past a third of waste only when that saves allocations', () => {
    // 3 CPUs, 2 MiB atom: upa 4 (512 KiB units) wastes 1 unit <= 3/3 and needs one allocation
    const ai = buildAllocInfo(3, 91544, 8192, 20480, MB2, null);
    expect([ai.unitSize, ai.dynSize, ai.allocSize]).toEqual([524288, 23144, MB2]);
    expect(ai.groups).toEqual([{ nrUnits: 4, baseOffset: 0, cpuMap: [0, 1, 2, null] }]);
    expect(dumpAllocInfo(ai, 3)).toEqual([
      'pcpu-alloc: s91544 r8192 d23144 u524288 alloc=1*2097152',
      'pcpu-alloc: [0] 0 1 2 - ',
    ]);
  });

  it('a CPU joins the first group with no remote CPU, either way round', () => {
    // CPU 2 is remote from 0 only as seen from 0: it still opens a second group
    const d = (a: number, b: number): number => (a === 0 && b === 2 ? 20 : 10);
    const ai = buildAllocInfo(4, 20000, 8192, 20480, 4096, d);
    expect(ai.groups.map((g) => g.cpuMap)).toEqual([[0, 1, 3], [2]]);
    expect(ai.groups.map((g) => g.baseOffset)).toEqual([0, 3 * 65536]);
  });

  it('gives the dynamic area at least PERCPU_DYNAMIC_EARLY_SIZE and ends the areas on a page', () => {
    const ai = buildAllocInfo(1, 5000, 0, 0, 4096, null);
    expect([ai.dynSize, ai.unitSize]).toEqual([20480 - 5000, 65536]);
  });
});

describe('boot --cpu-nodes: the group lines of the multi-node logs', () => {
  const cli = (...argv: string[]): string =>
    execFileSync(process.execPath, ['bin/percpu-sim.mjs', 'boot', ...argv], { encoding: 'utf8', stdio: 'pipe' });
  const groupLines = (text: string): string[] => text.split('\n').filter((l) => /^pcpu-alloc: \[/.test(l));

  it('2.6.32, 32 CPUs on 2 nodes, the irregular map of the log', () => {
    const map = '0,1,0,1,0,1,0,1,0,1,0,1,1,0,1,0,1,0,1,0,1,0,1,0,1,0,1,0,1,0,1,0';
    const out = cli('--cpu-nodes', map, '--static', '94552', '--dyn', '20480', '--atom', '2097152');
    // the console log lost the space each group line ends with
    expect(groupLines(out).map((l) => l.trimEnd())).toEqual(
      groupLines(logLines('boot05-2.6.32el6-x86_64-32cpu-2node.log').join('\n')),
    );
    expect(out.split('\n')[1]).toBe('pcpu-alloc: s94552 r8192 d24232 u131072 alloc=1*2097152');
  });

  it('4.20, 288 CPUs on 8 nodes, given as ranges', () => {
    const ranges = Array.from({ length: 16 }, (_, i) => `${18 * i}-${18 * i + 17}:${i % 8}`).join(',');
    const out = cli(
      '--cpu-nodes',
      ranges,
      '--static',
      '151552',
      '--dyn',
      '28672',
      '--atom',
      '2097152',
      '--memory',
      '512',
    );
    const log = logLines('boot17-4.20-rc2-x86_64-288cpu-8node.log');
    expect(groupLines(out)).toEqual(groupLines(log.join('\n')));
    expect(out.split('\n').slice(1, 2)).toEqual(log.slice(1, 2));
  });

  it.each([
    [
      ['--cpus', '8', '--cpu-nodes', '0,1,0,1'],
      '--cpu-nodes places 4 CPUs, but --cpus is 8: give a node for every CPU',
    ],
    [['--cpu-nodes', '0,1,2', '--nodes', '2'], '--cpu-nodes puts CPU 2 on node 2, but --nodes is 2 (nodes 0 to 1)'],
    [['--cpu-nodes', '0-3:0,5-7:1'], '--cpu-nodes leaves CPU 4 without a node'],
    [['--cpu-nodes', '0-3:0,3-7:1'], '--cpu-nodes puts CPU 3 in two ranges'],
    [['--cpu-nodes', '0-3:0,1'], '--cpu-nodes mixes a list of nodes with CPU ranges'],
    [['--cpu-nodes', '0,16'], '--cpu-nodes names node 16; a machine has at most 16 nodes'],
    [['--cpu-nodes', '0,1', '--distance', '10,30/30,11'], '--distance: a node is 10 from itself, but row 1 says 11'],
    [['--cpu-nodes', '0,1', '--distance', '10,30'], '--distance must be a 2x2 table for 2 nodes'],
  ])('refuses %j: %s', (argv, message) => {
    let err = '';
    let status = 0;
    try {
      cli(...argv);
    } catch (e) {
      const x = e as { status: number; stderr: string };
      [status, err] = [x.status, x.stderr];
    }
    expect(status).toBe(2);
    expect(err).toContain(`percpu-sim boot: ${message}`);
  });

  it('a distance of 10 between nodes keeps their CPUs in one group; a larger one parts them', () => {
    expect(groupLines(cli('--cpu-nodes', '0,1,0,1', '--distance', '10'))).toEqual([
      'pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 ',
    ]);
    expect(groupLines(cli('--cpu-nodes', '0,1,0,1', '--distance', '10,11/11,10'))).toEqual([
      'pcpu-alloc: [0] 0 [0] 2 [1] 1 [1] 3 ',
    ]);
  });
});

describe('the embedding first chunk falls back to pages when its groups lie too far apart', () => {
  // 8 CPUs interleaved over 2 nodes of 128 MiB each: the groups are 128 MiB apart, more than
  // three quarters of a 128 MiB vmalloc space
  const spec = { cpus: 8, nodes: 2, cpuToNode: [0, 1, 0, 1, 0, 1, 0, 1], memoryMiB: 256, vmallocBytes: 128 << 20 };
  const warning = 'PERCPU: max_distance=0x8010000 too large for vmalloc space 0x8000000';
  const boot = (fc?: 'auto' | 'embed' | 'page') =>
    bootMachine({ ...spec, backend: 'vm', numaGroups: true, contents: false, ...(fc ? { fc } : {}) });

  it('auto (the default): the warning, x86 falling back, and the page first chunk', () => {
    const { pc } = boot();
    expect(pc.dmesg).toEqual([
      warning,
      'setup_percpu: auto allocator failed (-22), falling back to page size',
      'PERCPU: 16 4K pages/cpu @0000200000000000 s20000 r8192 d12768',
      'pcpu-alloc: s20000 r8192 d12768 u65536 alloc=16*4096',
      'pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 [0] 4 [0] 5 [0] 6 [0] 7 ',
    ]);
    expect(pc.pcpu_unit_map).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // the model says the same given where boot memory put the two groups
    const model = bootFirstChunk({
      cpus: 8,
      cpuToNode: spec.cpuToNode,
      distance: nodeDistance(spec.cpuToNode),
      staticSize: 20000,
      reservedSize: 8192,
      dynSize: 20480,
      atomSize: 4096,
      backend: 'vm',
      addrs: [0x100000000000, 0x100008000000],
      pageAddr: 0x200000000000,
      vmallocSize: 128 << 20,
    });
    expect(model.lines).toEqual(pc.dmesg);
    expect(model.unitOffsets).toEqual(pc.pcpu_unit_offsets);
  });

  it('embed forces the embedding allocator: the warning, and the chunk embedded anyway', () => {
    expect(boot('embed').pc.dmesg).toEqual([
      warning,
      'PERCPU: Embedded 12 pages/cpu @0000100000000000 s20000 r8192 d20960 u65536',
      'pcpu-alloc: s20000 r8192 d20960 u65536 alloc=16*4096',
      'pcpu-alloc: [0] 0 [0] 2 [0] 4 [0] 6 [1] 1 [1] 3 [1] 5 [1] 7 ',
    ]);
  });

  it('page forces the page first chunk, without trying to embed', () => {
    expect(boot('page').pc.dmesg).toEqual([
      'PERCPU: 16 4K pages/cpu @0000200000000000 s20000 r8192 d12768',
      'pcpu-alloc: s20000 r8192 d12768 u65536 alloc=16*4096',
      'pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 [0] 4 [0] 5 [0] 6 [0] 7 ',
    ]);
  });

  it('with room in the vmalloc space auto embeds, as before', () => {
    const { pc } = bootMachine({ ...spec, vmallocBytes: 256 << 20, backend: 'vm', numaGroups: true, contents: false });
    expect(pc.dmesg[0]).toBe('PERCPU: Embedded 12 pages/cpu @0000100000000000 s20000 r8192 d20960 u65536');
  });

  it('percpu-km has no page first chunk: auto warns and embeds', () => {
    const { pc } = bootMachine({ ...spec, cpuToNode: [0, 0, 0, 0, 1, 1, 1, 1], backend: 'km', contents: false });
    expect(pc.dmesg[0]).toMatch(/^PERCPU: Embedded /);
  });

  it('the command prints the same lines', () => {
    const out = execFileSync(
      process.execPath,
      ['bin/percpu-sim.mjs', 'boot', '--cpu-nodes', '0,1,0,1,0,1,0,1', '--memory', '256', '--vmalloc', '128'],
      { encoding: 'utf8' },
    );
    expect(out).toBe(boot().pc.dmesg.join('\n') + '\n');
  });
});
