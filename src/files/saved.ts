/**
 * The files percpu-sim writes and reads back (stress --save, run --save), described once with
 * zod: the schema checks a file before anything runs, with the field's path in every error,
 * and the types the writers use are inferred from the same schema.
 */
import { z } from 'zod';
import { MUTANT_NAMES } from '../kernel/mutants.ts';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const mutant = z.enum(MUTANT_NAMES as [string, ...string[]]).nullable();

/** The stress configuration a saved run replays (bounded as the command line bounds it). */
export const StressConfigSchema = z.object({
  seed: int(0, 2 ** 32 - 1),
  cpus: int(1, 64),
  nodes: int(0, 16),
  backend: z.enum(['vm', 'km', 'auto']),
  memoryMiB: int(16, 4096),
  policy: z.enum(['random', 'pct', 'fifo']),
  // runs saved before the finer scheduler existed ran at sleeping points only
  granularity: z.enum(['sleep', 'lock', 'access']).default('sleep'),
  maxDelay: int(1, 1000),
  failRate: z.number().min(0).max(1),
  mutant,
  strict: z.boolean(),
  races: z.boolean().default(true),
  lockdep: z.boolean().default(true),
  count: z.boolean(),
  args: z.object({
    ops: int(1, 10_000_000),
    allocPct: int(0, 100),
    reservedPct: int(0, 100),
    sizes: z.enum(['small', 'mixed', 'large']),
    maxAlignShift: int(0, 12),
    maxLive: int(1, 100_000),
    earlyOps: int(0, 100_000).default(0),
  }),
});

const ViolationSchema = z.object({
  checker: z.string(),
  kind: z.string(),
  cpu: z.number().int(),
  tick: z.number().int(),
  message: z.string(),
});

/** `percpu-sim stress --save`: the configuration, and for an explored schedule its choices. */
export const SavedStressSchema = z
  .object({
    format: z.literal('percpu-sim-stress'),
    version: z.union([z.literal(1), z.literal(2)]),
    config: StressConfigSchema,
    scenario: z.string().nullable().default(null),
    schedule: z
      .union([z.array(z.string().regex(/^(\d+|k)\.\d+$/, 'a task name such as 0.3 or k.0')), z.array(z.number().int())])
      .nullable(),
    verdict: z.enum(['clean', 'violation']),
    violations: z.array(ViolationSchema),
  })
  .refine((s) => s.version === 2 || !s.schedule || s.schedule.every((x) => typeof x === 'number'), {
    message: 'version 1 schedules are choice numbers',
    path: ['schedule'],
  });

export type SavedStress = z.infer<typeof SavedStressSchema>;

const RequestSchema = z
  .object({
    kind: z.enum(['alloc', 'alloc_batch', 'free', 'free_batch', 'init_late', 'reclaim', 'teardown']),
    cpu: z.number().int(),
  })
  .passthrough();

/** `percpu-sim run --save`: the run's allocator event log. */
export const SavedRunLogSchema = z.object({
  format: z.literal('percpu-sim-run-log'),
  version: z.literal(1),
  workload: z.string(),
  seed: int(0, 2 ** 32 - 1),
  config: z.object({
    cpus: int(1, 1024),
    nodes: int(1, 16),
    backend: z.enum(['vm', 'km']),
    fc: z.enum(['embed', 'page']),
    memoryMiB: int(16, 4096),
    policy: z.enum(['random', 'pct', 'fifo']),
    maxDelay: int(1, 1000),
    mutant,
    failRate: z.number().min(0).max(1),
  }),
  verdict: z.enum(['pass', 'fail', 'timeout']),
  fingerprint: z.string(),
  log: z.array(
    z
      .object({
        seq: z.number().int(),
        tick: z.number().int().min(0),
        type: z.string(),
        task: z.number().int(),
        cpu: z.number().int(),
      })
      .passthrough()
      .refine((e) => e.type !== 'arrive' || RequestSchema.safeParse((e as { req?: unknown }).req).success, {
        message: 'an arrive event needs a request (req) with a known kind and a cpu',
      }),
  ),
});

export type SavedRunLogFile = z.infer<typeof SavedRunLogSchema>;

const SeedResultSchema = z.object({
  seed: int(0, 2 ** 32 - 1),
  verdict: z.enum(['clean', 'violation']),
  workers: z.boolean(),
  first: z.array(z.string()),
  requests: z.number().int().min(0),
  ms: z.number().min(0),
});

/** A campaign of stress seeds, or one shard of it: `stress --json` prints it as "campaign". */
export const CampaignSchema = z.object({
  format: z.literal('percpu-sim-campaign'),
  version: z.literal(1),
  base: int(0, 2 ** 32 - 1),
  runs: int(1, 1_000_000),
  shard: z
    .object({ index: int(1, 100_000), count: int(1, 100_000) })
    .refine((s) => s.index <= s.count, { message: 'index must be at most count' })
    .nullable(),
  jobs: int(1, 256),
  keepGoing: z.boolean(),
  config: StressConfigSchema,
  seeds: z.array(SeedResultSchema),
  skipped: z.number().int().min(0),
});

/** A stress --json report as merge reads it: only its campaign matters. */
export const CampaignReportSchema = z.object({ campaign: CampaignSchema }).passthrough();

export type Campaign = z.infer<typeof CampaignSchema>;

/** The first problems of a failed parse, each as "path: message". */
export function schemaErrors(e: z.ZodError, max = 3): string {
  return e.issues
    .slice(0, max)
    .map((i) => `${i.path.length ? i.path.join('.') : '(the file)'}: ${i.message}`)
    .join('; ');
}
