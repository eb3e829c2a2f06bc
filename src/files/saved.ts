/**
 * The files percpu-sim writes and reads back (stress --save, run --save, stress --json's
 * campaign, merge --json), described once with zod: the schema checks a file before anything
 * runs, with the field's path in every error; the writers parse with the same schema before
 * writing, so that what is saved always loads; and the types come from the schemas.
 */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { ActorEvent } from '../sim/events.ts';
import { RunConfigSchema, SeedSchema, StressArgsSchema, StressConfigSchema, int, withoutDefaults } from './config.ts';

const S = StressConfigSchema.shape;

/**
 * A stress configuration as a saved file holds it: every field required, except those that
 * files saved before the field existed lack, which read as what those runs did.
 */
export const SavedStressConfigSchema = withoutDefaults(StressConfigSchema).extend({
  // runs saved before the finer scheduler existed ran at sleeping points only
  granularity: S.granularity.removeDefault().default('sleep'),
  // and before the race detector and the lockdep assertions, nothing switched them off
  races: S.races,
  lockdep: S.lockdep,
  // runs saved before the reference model was held against them
  reference: S.reference,
  // and before the 32-bit machine
  word: S.word,
  args: withoutDefaults(StressArgsSchema).extend({
    // nor was there an early phase
    earlyOps: StressArgsSchema.shape.earlyOps.removeDefault().default(0),
  }),
});

const ViolationSchema = z.object({
  checker: z.string(),
  kind: z.string(),
  cpu: z.number().int(),
  tick: z.number().int(),
  message: z.string(),
});

/** An explored schedule: the task to run at each choice point (version 1 saved choice numbers). */
const ScheduleSchema = z.union([
  z.array(z.string().regex(/^(\d+|k)\.\d+$/, 'a task name such as 0.3 or k.0')),
  z.array(z.number().int()),
]);

/**
 * `percpu-sim stress --save`: the configuration and the verdict it came to; a saved
 * exploration (stress --explore --save, --schedule --save) adds its scenario and schedule.
 */
export const SavedStressSchema = z
  .object({
    format: z.literal('percpu-sim-stress'),
    version: z.union([z.literal(1), z.literal(2)]),
    config: SavedStressConfigSchema,
    scenario: z.string().nullable().default(null),
    schedule: ScheduleSchema.nullable(),
    verdict: z.enum(['clean', 'violation']),
    violations: z.array(ViolationSchema),
  })
  .refine((s) => s.version === 2 || !s.schedule || s.schedule.every((x) => typeof x === 'number'), {
    message: 'version 1 schedules are choice numbers',
    path: ['schedule'],
  });

export type SavedStress = z.infer<typeof SavedStressSchema>;

/** Writes stress --save's file (version 2): a run, or one schedule of an exploration. */
export function writeSavedStress(
  file: string,
  run: Pick<SavedStress, 'config' | 'verdict' | 'violations'> & { scenario: string | null; schedule: string[] | null },
): void {
  const { config, scenario, schedule, verdict, violations } = run;
  writeChecked(
    file,
    SavedStressSchema,
    { format: 'percpu-sim-stress', version: 2, config, scenario, schedule, verdict, violations },
    2,
  );
}

const RequestSchema = z
  .object({
    kind: z.enum(['alloc', 'alloc_batch', 'free', 'free_batch', 'init_late', 'reclaim', 'teardown']),
    cpu: z.number().int(),
  })
  .passthrough();

/** What a replay reads of every recorded event; the rest comes back as it was recorded. */
const EventHeaderSchema = z
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
  });

/** A recorded event, checked by its header and kept as it is (its keys in their order). */
const EventSchema = z.custom<ActorEvent>().superRefine((e, ctx) => {
  const r = EventHeaderSchema.safeParse(e);
  if (!r.success)
    for (const i of r.error.issues) ctx.addIssue({ code: z.ZodIssueCode.custom, path: i.path, message: i.message });
});

/** `percpu-sim run --save` (and stress --workers --save): the run's allocator event log. */
export const SavedRunLogSchema = z.object({
  format: z.literal('percpu-sim-run-log'),
  version: z.literal(1),
  workload: z.string(),
  seed: SeedSchema,
  config: RunConfigSchema,
  verdict: z.enum(['pass', 'fail', 'timeout']),
  fingerprint: z.string(),
  log: z.array(EventSchema),
  /** a controlled run: enough to run it again along the same schedule, and where it ended */
  controlled: z
    .object({
      policy: z.enum(['random', 'pct']),
      seed: SeedSchema,
      word: z.union([z.literal(32), z.literal(64)]),
      args: z.record(z.union([z.number(), z.string(), z.boolean()])),
      failOnLeak: z.boolean(),
      countViolations: z.boolean(),
      strictLocks: z.boolean(),
      /** a CPU, -1 the allocator actor, -2 an unrelated TLB flush (controller.ts) */
      schedule: z.array(z.number().int().min(-2)),
      memoryHash: z.string(),
      violations: z.array(z.string()),
    })
    .optional(),
});

export type SavedRunLog = z.infer<typeof SavedRunLogSchema>;

/** One seed's outcome, as a campaign report lists it. */
export const SeedResultSchema = z.object({
  seed: SeedSchema,
  verdict: z.enum(['clean', 'violation']),
  /** it ran on real worker threads */
  workers: z.boolean(),
  /** and under the controller (one thread at a time, a schedule that replays) */
  controlled: z.boolean().optional(),
  /** the first violations, "checker/kind: message" */
  first: z.array(z.string()),
  requests: z.number().int().min(0),
  ms: z.number().min(0),
});

export type SeedResult = z.infer<typeof SeedResultSchema>;

/** A shard of a campaign: the K-th (1-based) of N disjoint slices of its seeds. */
export const ShardSchema = z
  .object({ index: int(1, 100_000), count: int(1, 100_000) })
  .refine((s) => s.index <= s.count, { message: 'index must be at most count' });

export type Shard = z.infer<typeof ShardSchema>;

const Counts = z.record(z.number().int().min(0));

/** Concurrency coverage (src/check/coverage.ts CoverageTable): counts that add up over seeds and shards. */
export const CoverageSchema = z.object({
  overlaps: Counts,
  contended: Counts,
  orders: Counts,
  sleeps: z.record(z.tuple([z.number().int().min(0), z.number().int().min(0)])),
  states: Counts,
  failures: Counts,
});

/** A campaign of stress seeds, or one shard of it: `stress --json` prints it as "campaign". */
export const CampaignSchema = z.object({
  format: z.literal('percpu-sim-campaign'),
  version: z.literal(1),
  base: SeedSchema,
  runs: int(1, 1_000_000),
  shard: ShardSchema.nullable(),
  jobs: int(1, 256),
  keepGoing: z.boolean(),
  config: SavedStressConfigSchema,
  seeds: z.array(SeedResultSchema),
  skipped: z.number().int().min(0),
  /** the signal that stopped the campaign early (its other seeds are not run), or null */
  interrupted: z.enum(['SIGINT', 'SIGTERM']).nullable().default(null),
  /** the seeds' coverage summed; null in reports made before coverage was recorded */
  coverage: CoverageSchema.nullable().default(null),
});

export type Campaign = z.infer<typeof CampaignSchema>;

/** A stress --json report as merge reads it: only its campaign matters. */
export const CampaignReportSchema = z.object({ campaign: CampaignSchema }).passthrough();

/** `percpu-sim merge --json`: the campaign the shards make together. */
export const MergedCampaignSchema = CampaignSchema.extend({
  shard: z.null(),
  /** the reports merged */
  merged: z.number().int().min(1),
  /** the seeds of the campaign no report holds */
  missing: z.array(SeedSchema),
});

export type MergedCampaign = z.infer<typeof MergedCampaignSchema>;

/** The first problems of a failed parse, each as "path: message". */
export function schemaErrors(e: z.ZodError, max = 3): string {
  return e.issues
    .slice(0, max)
    .map((i) => `${i.path.length ? i.path.join('.') : '(the file)'}: ${i.message}`)
    .join('; ');
}

/** JSON text of a value its schema has parsed: what a writer writes, so that it always reads back. */
export function checkedJson<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, indent?: number): string {
  return JSON.stringify(schema.parse(value), null, indent) + '\n';
}

/** Writes a file through its schema (see checkedJson). */
export function writeChecked<T>(
  file: string,
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  value: unknown,
  indent?: number,
): void {
  writeFileSync(file, checkedJson(schema, value, indent));
}
