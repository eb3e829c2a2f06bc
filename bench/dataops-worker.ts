/**
 * One column of the data-operation benchmark (bench/dataops.ts) in its own thread, so that
 * the checked and the unchecked API each get the JIT's feedback of a process that runs only
 * them: a machine with a shadow, CPU 0's API with checking as asked, and one area. Each
 * message names an operation; the reply is its raw and its API time, in ns per operation.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Reply, Request } from '../src/sim/events.ts';
import { Simulation, simulationConfig } from '../src/harness/simulation.ts';
import { PerCpu } from '../src/api/per-cpu.ts';

export interface Op {
  name: string;
  /** iterations per timed run */
  n: number;
  raw: (n: number) => number;
  api: (n: number) => number;
}

const { check } = workerData as { check: boolean };
const sim = new Simulation(simulationConfig({ seed: 1, cpus: 2, races: false, reference: false, policy: 'fifo' }));
sim.actor.slabOnline();
void sim.actor.initLate();
sim.actor.drain();
const port = {
  request: (req: unknown) =>
    new Promise<Reply>((res) => {
      sim.actor.send({ ...(req as Request), cpu: 0 }, res);
      sim.actor.drain();
    }),
};
const cpu = new PerCpu(sim.cpuContext(0, { barrier_timeout_ms: 1000, check_isolation: check }), port, sim.machine.sab);
const ptr = await cpu.alloc_percpu(256, 64);
const va = cpu.this_cpu_ptr(ptr);
const p = cpu.mem.translate(va);
const { u8, u16, i32, i64 } = cpu.mem;
const w = p / 4;
const data = new Uint8Array(64).fill(7);
const big = 0x0102_0304_0506_0708n;
const view = cpu.this_cpu_words(ptr, 16);
const fast = 4_000_000;
export const ops: Op[] = [
  {
    name: 'read 8-bit',
    n: fast,
    raw: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += u8[p + (i & 63)]!;
      return s;
    },
    api: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += cpu.read(va + (i & 63), 1, 0);
      return s;
    },
  },
  {
    name: 'write 8-bit',
    n: fast,
    raw: (n) => {
      for (let i = 0; i < n; i++) u8[p + (i & 63)] = i;
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.write(va + (i & 63), i & 0xff, 1);
      return 0;
    },
  },
  {
    name: 'read 16-bit',
    n: fast,
    raw: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += u16[p / 2 + (i & 31)]!;
      return s;
    },
    api: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += cpu.read(va + (i & 31) * 2, 2, 0);
      return s;
    },
  },
  {
    name: 'write 16-bit',
    n: fast,
    raw: (n) => {
      for (let i = 0; i < n; i++) u16[p / 2 + (i & 31)] = i;
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.write(va + (i & 31) * 2, i & 0xffff, 2);
      return 0;
    },
  },
  {
    name: 'read 32-bit',
    n: fast,
    raw: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += i32[w + (i & 15)]!;
      return s;
    },
    api: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += cpu.read(va + (i & 15) * 4, 4, 0);
      return s;
    },
  },
  {
    name: 'write 32-bit',
    n: fast,
    raw: (n) => {
      for (let i = 0; i < n; i++) i32[w + (i & 15)] = i;
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.write(va + (i & 15) * 4, i, 4);
      return 0;
    },
  },
  {
    name: 'this_cpu_read64',
    n: fast / 2,
    raw: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += Number(i64[p / 8 + (i & 7)]! & 1n);
      return s;
    },
    api: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += Number(cpu.this_cpu_read64(ptr + (i & 7) * 8) & 1n);
      return s;
    },
  },
  {
    name: 'this_cpu_write64',
    n: fast / 2,
    raw: (n) => {
      for (let i = 0; i < n; i++) i64[p / 8 + (i & 7)] = big;
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.this_cpu_write64(ptr + (i & 7) * 8, big);
      return 0;
    },
  },
  {
    name: 'atomic_read 32-bit',
    n: fast,
    raw: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += Atomics.load(i32, w + (i & 15));
      return s;
    },
    api: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += cpu.atomic_read(va + (i & 15) * 4, 4, 0);
      return s;
    },
  },
  {
    name: 'atomic_add 32-bit',
    n: fast,
    raw: (n) => {
      for (let i = 0; i < n; i++) Atomics.add(i32, w + (i & 15), 1);
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.atomic_add(va + (i & 15) * 4, 1, 4);
      return 0;
    },
  },
  {
    name: 'atomic_write 32-bit',
    n: fast,
    raw: (n) => {
      for (let i = 0; i < n; i++) Atomics.store(i32, w + (i & 15), i);
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.atomic_write(va + (i & 15) * 4, i, 4);
      return 0;
    },
  },
  {
    name: 'atomic_read64',
    n: fast / 2,
    raw: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += Number(Atomics.load(i64, p / 8 + (i & 7)) & 1n);
      return s;
    },
    api: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += Number(cpu.atomic_read64(va + (i & 7) * 8, 0) & 1n);
      return s;
    },
  },
  {
    name: 'atomic_write64',
    n: fast / 2,
    raw: (n) => {
      for (let i = 0; i < n; i++) Atomics.store(i64, p / 8 + (i & 7), big);
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.atomic_write64(va + (i & 7) * 8, big);
      return 0;
    },
  },
  {
    name: 'this_cpu_read',
    n: fast,
    raw: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += i32[w + (i & 15)]!;
      return s;
    },
    api: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += cpu.this_cpu_read(ptr + (i & 15) * 4);
      return s;
    },
  },
  {
    name: 'this_cpu_write',
    n: fast,
    raw: (n) => {
      for (let i = 0; i < n; i++) i32[w + (i & 15)] = i;
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.this_cpu_write(ptr + (i & 15) * 4, i);
      return 0;
    },
  },
  {
    name: 'this_cpu_add (one counter)',
    n: fast,
    raw: (n) => {
      for (let i = 0; i < n; i++) i32[w] = (i32[w]! + 1) | 0;
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.this_cpu_add(ptr, 1);
      return 0;
    },
  },
  {
    name: 'this_cpu_words v[i & 15] += 1',
    n: fast * 4,
    raw: (n) => {
      for (let i = 0; i < n; i++) i32[w + (i & 15)]! += 1;
      return 0;
    },
    api: (n) => {
      const v = view;
      for (let i = 0; i < n; i++) v[i & 15]! += 1;
      return 0;
    },
  },
  {
    name: 'bytes (read 64 bytes)',
    n: fast / 8,
    raw: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += u8.slice(p, p + 64)[i & 63]!;
      return s;
    },
    api: (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += cpu.bytes(va, 64, 0)[i & 63]!;
      return s;
    },
  },
  {
    name: 'writeBytes (64 bytes)',
    n: fast / 8,
    raw: (n) => {
      for (let i = 0; i < n; i++) u8.set(data, p);
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.writeBytes(va, data);
      return 0;
    },
  },
  {
    name: 'fill (memset 64 bytes)',
    n: fast / 8,
    raw: (n) => {
      for (let i = 0; i < n; i++) u8.fill(i, p, p + 64);
      return 0;
    },
    api: (n) => {
      for (let i = 0; i < n; i++) cpu.fill(va, i & 0xff, 64);
      return 0;
    },
  },
];

/** Where a loop's results go, so that no read is optimised away. */
let sink = 0;
const ns = (n: number, fn: () => number): number => {
  const t = performance.now();
  sink += fn();
  return ((performance.now() - t) * 1e6) / n;
};

parentPort!.on('message', (k: number) => {
  const op = ops[k]!;
  const raw = ns(op.n, () => op.raw(op.n));
  const api = ns(op.n, () => op.api(op.n));
  parentPort!.postMessage({ raw, api, faults: cpu.faults.length + (Number.isNaN(sink) ? 1 : 0) });
});
parentPort!.postMessage({ names: ops.map((o) => o.name) });
