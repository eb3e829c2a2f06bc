/**
 * Small scenarios a kernel developer would want exhausted. Each sets the stage one request at
 * a time (prelude), races a few requests on two or three CPUs (the part that is explored), and
 * cleans up one request at a time (postlude), so that every interleaving of the race can be
 * visited. Every scenario frees what it allocates; the checkers run on every schedule.
 */
import type { ScenarioPrograms, StressConfig } from '../stress/engine.ts';
import type { PerCpu } from '../api/per-cpu.ts';

export interface Scenario {
  name: string;
  description: string;
  /** the machine and scheduler it runs on */
  config: Partial<StressConfig>;
  /** the preemption bound it is explored completely within by default */
  preemptions: number;
  /** fresh programs for one execution (their state lives in the closure) */
  programs: () => ScenarioPrograms;
}

/** The largest area percpu serves (PCPU_MIN_UNIT_SIZE): a whole chunk of the smallest unit. */
const WHOLE = 64 << 10;

async function alloc(cpu: PerCpu, size: number, align = 8, reserved = false): Promise<number> {
  const p = reserved ? await cpu.alloc_reserved_percpu(size, align) : await cpu.alloc_percpu(size, align);
  if (p) cpu.this_cpu_write(p, cpu.cpu + 1, 1); // touch it: the isolation checker sees the copy
  return p;
}

async function freeAll(cpu: PerCpu, ptrs: number[]): Promise<void> {
  for (const p of ptrs.splice(0)) if (p) await cpu.free_percpu(p);
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'last-area',
    description:
      'two CPUs allocate areas of which only one fits in what is left of the first chunk: the other creates a chunk',
    config: { cpus: 2 },
    preemptions: 3,
    programs: () => {
      const got: number[][] = [[], []];
      return {
        async run(cpu) {
          got[cpu.cpu]!.push(await alloc(cpu, 12_000));
        },
        async postlude(cpus) {
          for (const c of cpus) await freeAll(c, got[c.cpu]!);
        },
      };
    },
  },
  {
    name: 'extend-vs-free',
    description:
      "CPU 0's allocation must extend the first chunk's area map (pcpu_lock dropped to allocate the new one) while CPU 1 frees an area of that chunk, which moves it to another slot",
    config: { cpus: 2 },
    preemptions: 3,
    programs: () => {
      const areas: number[] = [];
      return {
        async prelude([c0]) {
          // after these the first chunk's 128-entry map has one entry to spare (each small
          // area takes two: itself and its padding), and 8160 free bytes: one free more
          // crosses 8192, the next slot
          areas.push(await alloc(c0!, 6600));
          for (let i = 0; i < 62; i++) areas.push(await alloc(c0!, 100, 64));
        },
        async run(cpu) {
          if (cpu.cpu === 0) areas.push(await alloc(cpu, 100, 64));
          else await cpu.free_percpu(areas.splice(3, 1)[0]!);
        },
        async postlude([c0]) {
          await freeAll(c0!, areas);
        },
      };
    },
  },
  {
    name: 'reclaim-vs-populate',
    description:
      'CPU 0 empties a second chunk, which schedules reclaim to destroy one, while CPU 1 allocates in the unpopulated tail of a third chunk and populates it',
    config: { cpus: 2 },
    preemptions: 3,
    programs: () => {
      const areas: number[] = [];
      let mine = 0;
      return {
        async prelude([c0]) {
          areas.push(await alloc(c0!, WHOLE), await alloc(c0!, WHOLE)); // chunks 1 and 2
          areas.push(await alloc(c0!, WHOLE / 2)); // the first half of chunk 3
          await c0!.free_percpu(areas.shift()!); // one empty chunk: nothing to reclaim yet
        },
        async run(cpu) {
          if (cpu.cpu === 0) await cpu.free_percpu(areas.shift()!);
          else mine = await alloc(cpu, 8 << 10); // chunk 3 is the fullest with room: pages 8 and 9
        },
        async postlude([c0, c1]) {
          await freeAll(c0!, areas);
          await freeAll(c1!, [mine]);
        },
      };
    },
  },
  {
    name: 'modules',
    description: 'module load on one CPU and unload on another: static percpu sections from the reserved chunk',
    config: { cpus: 2 },
    preemptions: 3,
    programs: () => {
      const loaded: number[] = [];
      let fresh = 0;
      return {
        async prelude([c0]) {
          loaded.push(await alloc(c0!, 2000, 8, true), await alloc(c0!, 500, 16, true));
        },
        async run(cpu) {
          if (cpu.cpu === 0) fresh = await alloc(cpu, 3000, 8, true);
          else await cpu.free_percpu(loaded.shift()!);
        },
        async postlude([c0]) {
          await freeAll(c0!, [...loaded, fresh]);
        },
      };
    },
  },
  {
    name: 'early-limit',
    description:
      'the boot CPU allocates before slab until the early map is full; then percpu_init_late() swaps the maps while CPU 1 allocates and CPU 0 frees',
    config: { cpus: 2 },
    preemptions: 3,
    programs: () => {
      const early: number[] = [];
      let late = 0;
      return {
        racingInitLate: true,
        async early(cpu) {
          for (let i = 0; i < 130; i++) {
            const p = await cpu.alloc_percpu(4, 4);
            if (p) early.push(p);
          }
        },
        async run(cpu) {
          if (cpu.cpu === 0) await cpu.free_percpu(early.shift()!);
          else late = await alloc(cpu, 64);
        },
        async postlude([c0, c1]) {
          await c0!.free_batch(early.splice(0));
          await freeAll(c1!, [late]);
        },
      };
    },
  },
];

export const SCENARIO_NAMES = SCENARIOS.map((s) => s.name);

export function scenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
