/**
 * The configurations of a stress run and of a workload run, each described once with zod: the
 * bounds the command line checks its flags against, the defaults, the types the drivers use,
 * and the shape they take inside saved files (saved.ts).
 */
import { z } from 'zod';
import { MUTANT_NAMES, type MutantName } from '../kernel/mutants.ts';
import type { BackendKind } from '../kernel/setup.ts';
import { GRANULARITIES, type Granularity } from '../sim/run-queue.ts';
import { DEFAULT_STRESS_ARGS as ARGS, SIZE_MIXES } from './stress-args.ts';

export const int = (min: number, max: number) => z.number().int().min(min).max(max);
export const SeedSchema = int(0, 2 ** 32 - 1);
export const MutantSchema = z.enum(MUTANT_NAMES as [MutantName, ...MutantName[]]).nullable();

/** What each CPU of a stress run does (src/stress/program.ts). */
export const StressArgsSchema = z.object({
  /** operations per CPU */
  ops: int(1, 10_000_000).default(ARGS.ops),
  /** percent of operations that allocate (when under maxLive) */
  allocPct: int(0, 100).default(ARGS.allocPct),
  /** percent of allocations that ask for the reserved chunk */
  reservedPct: int(0, 100).default(ARGS.reservedPct),
  sizes: z.enum(SIZE_MIXES).default(ARGS.sizes),
  /** alignments are 2^0 .. 2^maxAlignShift */
  maxAlignShift: int(0, 12).default(ARGS.maxAlignShift),
  /** live areas per CPU at most */
  maxLive: int(1, 100_000).default(ARGS.maxLive),
  /** allocations the boot CPU makes before slab is online (0: no early phase) */
  earlyOps: int(0, 100_000).default(ARGS.earlyOps),
});

export type StressArgs = z.infer<typeof StressArgsSchema>;
export type { SizeMix } from './stress-args.ts';

/** A stress run (src/stress/engine.ts): a pure function of this, its seed included. */
export const StressConfigSchema = z.object({
  seed: SeedSchema.default(1),
  cpus: int(1, 64).default(3),
  /** NUMA nodes; 0 lets the seed choose (see resolveMachine) */
  nodes: int(0, 16).default(0),
  /** the node of every CPU (default: CPUs in blocks per node) */
  cpuToNode: z.array(int(0, 15)).optional(),
  /** node_distance(), nodes x nodes (default: 10 local, 20 remote) */
  distance: z.array(z.array(int(10, 255))).optional(),
  /** 'auto' lets the seed choose */
  backend: z.enum(['vm', 'km', 'auto']).default('auto'),
  memoryMiB: int(16, 4096).default(64),
  policy: z.enum(['random', 'pct', 'pos', 'fifo']).default('random'),
  /** where the scheduler may preempt a task */
  granularity: z.enum(GRANULARITIES as [Granularity, ...Granularity[]]).default('access'),
  /** the longest a sleeping step lasts, in ticks */
  maxDelay: int(1, 1000).default(4),
  /** fraction of page allocations that fail */
  failRate: z.number().min(0).max(1).default(0.005),
  mutant: MutantSchema.default(null),
  strict: z.boolean().default(false),
  /** the data-race detector (lockset and happens-before) */
  races: z.boolean().default(true),
  /** the kernel's own lockdep_assert_held() calls (documentation; the detector does not need them) */
  lockdep: z.boolean().default(true),
  /** hold every operation against the 2.6.36 reference model */
  reference: z.boolean().default(true),
  /** count violations and go on instead of stopping at the first */
  count: z.boolean().default(false),
  /** the machine's word: on 32, a controlled worker run splits plain 64-bit accesses in two */
  word: z.union([z.literal(32), z.literal(64)]).default(64),
  args: StressArgsSchema.default({}),
});

export type StressConfig = z.infer<typeof StressConfigSchema>;

export const DEFAULT_STRESS: StressConfig = StressConfigSchema.parse({});

/**
 * The machine a seed runs on when the configuration leaves it open: the backend alternates
 * with the seed (vm on even seeds, km on odd ones) and the node count cycles through 1 to 4
 * (never more nodes than CPUs), so a campaign covers both backends and NUMA by default.
 */
export function resolveMachine(cfg: StressConfig): { backend: BackendKind; nodes: number } {
  const backend = cfg.backend === 'auto' ? (cfg.seed % 2 ? 'km' : 'vm') : cfg.backend;
  const nodes = cfg.nodes === 0 ? 1 + (Math.floor(cfg.seed / 2) % Math.min(4, cfg.cpus)) : cfg.nodes;
  return { backend, nodes };
}

/** The machine and scheduler of a workload run (src/smp/run.ts), as its report and run log give them. */
export const RunConfigSchema = z.object({
  cpus: int(1, 1024),
  nodes: int(1, 16),
  cpuToNode: z.array(int(0, 15)).optional(),
  distance: z.array(z.array(int(10, 255))).optional(),
  backend: z.enum(['vm', 'km']),
  fc: z.enum(['embed', 'page']),
  memoryMiB: int(16, 4096),
  policy: z.enum(['random', 'fifo', 'pct', 'pos']),
  maxDelay: int(1, 1000),
  mutant: MutantSchema,
  failRate: z.number().min(0).max(1),
});

export type RunConfig = z.infer<typeof RunConfigSchema>;

type NoDefaults<S extends z.ZodRawShape> = { [K in keyof S]: S[K] extends z.ZodDefault<infer T> ? T : S[K] };

/**
 * The object without the defaults of its fields: a saved file says what it ran, and a field
 * it lacks is an error rather than today's default (which may not be what ran).
 */
export function withoutDefaults<S extends z.ZodRawShape>(o: z.ZodObject<S>): z.ZodObject<NoDefaults<S>> {
  const shape: z.ZodRawShape = {};
  for (const [k, v] of Object.entries(o.shape)) shape[k] = v instanceof z.ZodDefault ? v.removeDefault() : v;
  return z.object(shape) as z.ZodObject<NoDefaults<S>>;
}
