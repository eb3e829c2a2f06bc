/** `percpu-sim run`: boot an SMP machine and run a workload on one worker thread per CPU. */
import { readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Percpu } from '../kernel/percpu.ts';
import { formatRunReport } from '../report/run-report.ts';
import { allocatorSvg } from '../report/svg.ts';
import { saveRunLog } from '../smp/run-log.ts';
import { runWorkload } from '../smp/run.ts';
import { randomSeed } from '../util/prng.ts';
import { RunConfigSchema, SeedSchema } from '../files/config.ts';
import { runFlagsCommand } from '../files/rerun.ts';
import { rangeOf } from '../files/bounds.ts';
import {
  CHECK_OPTIONS,
  type Command,
  MACHINE_OPTIONS,
  UsageError,
  cpuNodesFlag,
  usage,
  distanceFlag,
  int,
  onInterrupt,
  parse,
  parseMutant,
  progressBar,
} from './common.ts';
import { intIn, oneOfIn } from './schema-flags.ts';
import { Outputs } from './outputs.ts';
import { runPage } from './reports.ts';
import { HTML_OPTION, TRACE_OPTION, VISUALS_HELP, Visuals } from './visuals.ts';

const C = RunConfigSchema.shape;

const EXAMPLES_DIR = new URL('../../examples', import.meta.url);

export function exampleNames(): string[] {
  try {
    return readdirSync(fileURLToPath(EXAMPLES_DIR))
      .filter((f) => /\.[tj]s$/.test(f))
      .map((f) => f.slice(0, -3))
      .sort();
  } catch {
    return [];
  }
}

export const run: Command = {
  summary: 'boot an SMP machine and run a workload on every CPU (the default demo without a name)',
  get help() {
    return `Usage: percpu-sim run [EXAMPLE|FILE] [options]

Boots a simulated SMP machine in the kernel's order (setup_per_cpu_areas, early allocations,
slab online, percpu_init_late, secondary CPUs), runs the workload on one worker thread per
CPU, then shuts down: leaks are freed and reported, and page accounting must return to its
post-boot state. Prints the boot lines, a per-CPU summary, a percpu_stats dump (in the debugfs
format of 4.13 and later: 2.6.36 had no such file) and a verdict.

Examples: ${exampleNames().join(', ') || '(none found)'}   (default: demo)

Options:
  --cpus N            simulated CPUs, 1 to 1024 (default 4)
  --cpus-per-thread K run K CPUs on each worker thread (M:N) instead of one thread per CPU
                      (1:1, the default): for machines with more CPUs than threads to spare.
                      A thread's CPUs interleave at every await; the report says which ran
  --controlled        one CPU per thread, each parking at every shared-memory operation of
                      the data path, every request and every reply, while the scheduler
                      (--policy random or pct) picks who goes on: the run is a function of
                      its seed, and --save / replay-run reproduce it whole (violations and
                      final memory). Not with --cpus-per-thread
  --word 32|64        the machine's word (default 64); on 32, a controlled run splits plain
                      64-bit per-CPU accesses in two, and torn reads and writes are reported
  --nodes N           NUMA nodes; more than one groups CPUs by node (default 1)
  --cpu-nodes LIST    the node of every CPU: "0,1,0,1" or ranges "0-15:0,16-31:1"
                      (default: CPUs in blocks per node); sets --cpus and --nodes if not given
  --distance D        node distance: one remote distance ("21") or the table, rows split by
                      "/" ("10,21/21,10"); default 10 local, 20 remote
  --backend vm|km     chunk backend (default vm)
  --memory MIB        physical memory (default 64, a quarter MiB per CPU if more, or what
                      the workload says it needs on this machine if more still)
  --seed N            seed of every random choice (default: random, printed)
  --policy P          scheduler: random, fifo, pct or pos (default random)
  --arg KEY=VALUE     override a workload argument (repeatable)
  --timeout S         how long a CPU (or a barrier, or verify()) may make no progress
                      before the run times out, in seconds, exactly (default 120, longer
                      with more worker threads than cores)
  --no-check          skip the checkers (allocator invariants, lock rules, isolation)
  --no-reference      do not hold every operation against the 2.6.36 reference model
  --count             count isolation violations and go on, instead of stopping
  --strict            report schedule_work() under pcpu_lock as a lock violation
  --mutant NAME       put a historical or invented bug back (see percpu-sim mutants)
  --fail-on-leak      areas the workload leaves allocated fail the run (they are always
                      reported, kmemleak style: which CPU allocated what, where, when)
  --save FILE         save the run's event log; percpu-sim replay-run FILE replays it
  --svg FILE          draw every chunk (areas, populated pages) as it was when the workload ended
${VISUALS_HELP}
  --json              print the report as JSON
  --verbose           show where an error happened: the stack of an internal error, and the
                      workload's file and line for an error its run() throws
  -h, --help          this text

Exit status: 0 when the run passes, 1 when it fails (a failed check, a kernel BUG, a crashed
CPU), 2 for bad usage, 3 when a CPU stopped making progress (timed out), 70 for an internal
error, 130/143 interrupted (the verdict INTERRUPTED, and --html and --trace of the run up to
the signal, are written).

Examples:
  percpu-sim run counter --cpus 8 --arg adds=5000000
  percpu-sim run churn --seed 7 --backend km
  percpu-sim run lifecycle --json
  percpu-sim run churn --cpus 1024 --cpus-per-thread 16 --arg ops=50
  percpu-sim run u64-stats --controlled --word 32 --arg sync=false`;
  },
  async run(argv) {
    const { values, positionals } = parse(argv, {
      ...MACHINE_OPTIONS,
      ...CHECK_OPTIONS,
      arg: { type: 'string', multiple: true },
      timeout: { type: 'string' },
      'cpus-per-thread': { type: 'string' },
      controlled: { type: 'boolean' },
      word: { type: 'string' },
      'no-check': { type: 'boolean' },
      'no-reference': { type: 'boolean' },
      'fail-on-leak': { type: 'boolean' },
      svg: { type: 'string' },
      ...TRACE_OPTION,
      ...HTML_OPTION,
    });
    if (positionals.length > 1) throw new UsageError(`run takes one workload, got ${positionals.join(' ')}`);
    const out = new Outputs('run');
    const svg = out.claim('--svg', values.svg);
    const savePath = out.claim('--save', values.save);
    const visuals = new Visuals(out, values);
    const recorder = visuals.fresh();
    const mutant = parseMutant(values.mutant);
    const workload = positionals[0] ?? 'demo';
    const args: Record<string, number | string | boolean> = {};
    for (const a of (values.arg as string[] | undefined) ?? []) {
      const m = /^([A-Za-z_][\w-]*)=(.*)$/.exec(a);
      if (!m) throw new UsageError(`--arg must look like KEY=VALUE, got "${a}"`);
      const v = m[2]!;
      // a number as JSON writes one, exponent included (n=1e3)
      const numeric = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v) && Number.isFinite(Number(v));
      args[m[1]!] = v === 'true' ? true : v === 'false' ? false : numeric ? Number(v) : v;
    }
    const seed = values.seed === undefined ? randomSeed() : intIn('--seed', values.seed, SeedSchema, 0);
    const map = cpuNodesFlag(
      values['cpu-nodes'],
      values.cpus !== undefined ? intIn('--cpus', values.cpus, C.cpus, 4) : undefined,
      values.nodes !== undefined ? intIn('--nodes', values.nodes, C.nodes, 1) : undefined,
    );
    if (map && map.cpus > rangeOf(C.cpus).max)
      usage(`--cpu-nodes places ${map.cpus} CPUs; run takes at most ${rangeOf(C.cpus).max}`);
    const distance = distanceFlag(values.distance, map?.nodes ?? intIn('--nodes', values.nodes, C.nodes, 1));
    const json = values.json === true;
    const progress = progressBar(json);
    let phase = 'starting';
    const bar = (p: string, done: number, total: number, detail?: string): void => {
      phase = p;
      progress(p, done, total, detail);
    };
    const given = argv.filter((a) => a !== positionals[0]);
    const rerun = runFlagsCommand(workload, seed, given);
    onInterrupt('run', () => `seed ${seed}, in phase "${phase}"; rerun with: ${rerun}`, {
      // what ran up to the signal: the report's verdict, and the timeline so far
      flush: (signal) => {
        visuals.write({
          title: `percpu-sim run ${workload}: interrupted`,
          verdict: {
            label: 'INTERRUPTED',
            ok: false,
            seed,
            replay: rerun,
            notes: [`interrupted (${signal}) in phase "${phase}": the page shows the run up to then`],
          },
        });
        const why = 'the run was interrupted before its end';
        out.unwritten('--save', savePath, `${why}, and a run log replays only a whole run`);
        if (!svgDrawn) out.unwritten('--svg', svg, why);
        process.stdout.write(
          json
            ? JSON.stringify({ workload, seed, verdict: 'interrupted', signal, phase, rerun }, null, 2) + '\n'
            : `== verdict: INTERRUPTED (${signal}) in phase "${phase}" ==\nseed: ${seed}\nrerun: ${rerun}\n`,
        );
        out.finish(1);
      },
    });
    let svgDrawn = false;
    const word = values.word === undefined ? 64 : values.word === '32' ? 32 : values.word === '64' ? 64 : 0;
    if (!word) usage(`--word takes 32 or 64, got "${String(values.word)}"`);
    if (values.word !== undefined && !values.controlled)
      usage('--word splits 64-bit accesses where the scheduler can stop a CPU between the halves: add --controlled');
    const policy = oneOfIn('--policy', values.policy, C.policy, 'random');
    if (values.controlled && values['cpus-per-thread'] !== undefined)
      usage('--controlled runs one CPU per worker thread; leave out --cpus-per-thread');
    if (values.controlled && policy !== 'random' && policy !== 'pct')
      usage('--controlled picks threads with --policy random or pct');
    let report;
    try {
      report = await runWorkload({
        ...(values.controlled
          ? { control: { policy: policy === 'pct' ? ('pct' as const) : ('random' as const), word: word as 32 | 64 } }
          : {}),
        workload,
        args,
        ...(values.cpus !== undefined ? { cpus: intIn('--cpus', values.cpus, C.cpus, 4) } : {}),
        ...(values['cpus-per-thread'] !== undefined
          ? { cpusPerThread: int('--cpus-per-thread', values['cpus-per-thread'], 1, 1024, 1) }
          : {}),
        ...(values.nodes !== undefined ? { nodes: intIn('--nodes', values.nodes, C.nodes, 1) } : {}),
        ...(map ? { cpus: map.cpus, nodes: map.nodes, cpuToNode: map.cpuToNode } : {}),
        ...(distance ? { distance } : {}),
        ...(values.backend !== undefined ? { backend: oneOfIn('--backend', values.backend, C.backend, 'vm') } : {}),
        ...(mutant !== undefined ? { mutant } : {}),
        ...(values.count ? { countViolations: true } : {}),
        strictLocks: values.strict === true,
        ...(values.memory !== undefined ? { memoryMiB: intIn('--memory', values.memory, C.memoryMiB, 64) } : {}),
        seed,
        policy,
        check: values['no-check'] !== true,
        reference: values['no-reference'] !== true,
        failOnLeak: values['fail-on-leak'] === true,
        // given, the bound is exact; left out, it grows with more CPU threads than cores
        ...(values.timeout !== undefined
          ? { phaseTimeoutMs: int('--timeout', values.timeout, 1, 3600, 120) * 1000 }
          : {}),
        onProgress: bar,
        ...(recorder ? { recorder } : {}),
        ...(svg
          ? {
              onRunDone: (pc: Percpu) => {
                svgDrawn = true;
                out.write('--svg', svg, (p) =>
                  writeFileSync(p, allocatorSvg(pc, `percpu-sim run ${workload}, seed ${seed}`)),
                );
              },
            }
          : {}),
      });
    } catch (e) {
      if ((e as Error).message.startsWith('no workload')) throw new UsageError((e as Error).message);
      throw e;
    }
    out.write('--save', savePath, (p) => saveRunLog(p, report));
    visuals.write(runPage(report));
    const { log: _log, fingerprint: _fp, ...data } = report;
    // a bigint that run() returned is written as its decimal digits
    const toJson = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
    process.stdout.write((json ? JSON.stringify(data, toJson, 2) : formatRunReport(report)) + '\n');
    return out.finish(report.verdict === 'pass' ? 0 : report.verdict === 'timeout' ? 3 : 1);
  },
};
