/**
 * Reruns the whole behaviour record (test/fixtures/behaviour/record.json): stress seeds
 * 1-300 with default flags and with each named mutant, and every exploration, through the
 * command line as a user runs them, and compares each verdict and first violation. The
 * record predates the reference model, so these runs leave it out (--no-reference); then
 * the same seeds run with it, as by default: every clean seed of the unmutated allocator
 * must stay clean, and every violation recorded must still be found (the model may find
 * more, and sooner). Seeds on worker threads are skipped (their interleaving is the
 * machine's). Exit 1 on a difference.
 *
 *   npm run check:behaviour [-- --runs N]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const BIN = fileURLToPath(new URL('../bin/percpu-sim.mjs', import.meta.url));
const RECORD = new URL('../test/fixtures/behaviour/record.json', import.meta.url);

const Entry = z.union([
  z.tuple([z.number(), z.literal('workers')]),
  z.tuple([z.number(), z.enum(['clean', 'violation']), z.string().nullable()]),
]);
const Record = z.object({
  stress: z.record(z.array(Entry)),
  explore: z.record(z.object({ schedules: z.number(), complete: z.boolean(), violations: z.array(z.string()) })),
});
const Campaign = z.object({
  campaign: z.object({
    seeds: z.array(
      z.object({ seed: z.number(), verdict: z.string(), workers: z.boolean(), first: z.array(z.string()) }),
    ),
  }),
});
const Explored = z.object({
  schedules: z.number(),
  complete: z.boolean(),
  violations: z.array(z.object({ checker: z.string(), kind: z.string(), message: z.string() })),
});

const runsFlag = process.argv.indexOf('--runs');
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 300;
const record = Record.parse(JSON.parse(readFileSync(RECORD, 'utf8')));

function cli(args: string[]): unknown {
  const r = spawnSync(process.execPath, [BIN, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`percpu-sim ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

let differences = 0;
const differ = (what: string, want: unknown, got: unknown): void => {
  differences++;
  console.log(`  DIFFERS ${what}\n    recorded: ${JSON.stringify(want)}\n    now:      ${JSON.stringify(got)}`);
};

for (const [mutant, entries] of Object.entries(record.stress)) {
  const t = Date.now();
  const args = ['stress', '--runs', String(runs), '--keep-going', ...(mutant === 'none' ? [] : ['--mutant', mutant])];
  const now = new Map(Campaign.parse(cli([...args, '--no-reference'])).campaign.seeds.map((s) => [s.seed, s]));
  let same = 0;
  for (const e of entries.slice(0, runs)) {
    if (e[1] === 'workers') continue;
    const s = now.get(e[0]);
    const got = s ? [s.verdict, s.first[0] ?? null] : ['not run', null];
    if (got[0] === e[1] && got[1] === e[2]) same++;
    else differ(`stress ${mutant} seed ${e[0]}`, [e[1], e[2]], got);
  }
  console.log(`stress ${mutant}: ${same} seed(s) as recorded (${((Date.now() - t) / 1000).toFixed(0)} s)`);

  const withModel = new Map(Campaign.parse(cli(args)).campaign.seeds.map((s) => [s.seed, s]));
  let more = 0;
  for (const e of entries.slice(0, runs)) {
    if (e[1] === 'workers') continue;
    const s = withModel.get(e[0]);
    if (e[1] === 'violation' && s?.verdict !== 'violation')
      differ(`stress ${mutant} seed ${e[0]} with the reference model`, 'violation', s?.verdict ?? 'not run');
    else if (e[1] === 'clean' && s?.verdict !== 'clean') {
      if (mutant === 'none')
        differ(`stress seed ${e[0]} with the reference model (a false alarm)`, 'clean', s?.first[0]);
      else more++;
    }
  }
  console.log(`  with the reference model: every recorded violation found; ${more} more seed(s) caught`);
}

for (const [key, want] of Object.entries(record.explore)) {
  const [scenario, mutant] = key.split('/') as [string, string];
  const got = Explored.parse(
    cli([
      'stress',
      '--explore',
      '--scenario',
      scenario,
      '--no-reference',
      ...(mutant === 'none' ? [] : ['--mutant', mutant]),
    ]),
  );
  const now = {
    schedules: got.schedules,
    complete: got.complete,
    violations: got.violations.map((v) => `${v.checker}/${v.kind}: ${v.message}`),
  };
  if (JSON.stringify(now) === JSON.stringify(want))
    console.log(`explore ${key}: as recorded (${now.schedules} schedules)`);
  else differ(`explore ${key}`, want, now);
}

console.log(
  differences ? `${differences} difference(s) from the record` : 'every verdict and first violation as recorded',
);
process.exit(differences ? 1 : 0);
