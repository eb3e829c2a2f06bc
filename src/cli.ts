/**
 * The command line. Each command parses its own flags, prints its own --help, and returns an
 * exit status: 0 success, 1 a failure the run found (a violation, a failed check), 2 bad usage
 * or bad input.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { allocatorSvg } from './report/svg.ts';
import type { Percpu } from './kernel/percpu.ts';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BadInput, replayText } from './replay.ts';
import { Machine } from './mem/machine.ts';
import { setup_per_cpu_areas, type BackendKind, type FirstChunkKind } from './kernel/setup.ts';
import { PERCPU_DYNAMIC_RESERVE, PERCPU_MODULE_RESERVE } from './kernel/constants.ts';
import { DEFAULT_STATIC_SIZE } from './kernel/setup.ts';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runWorkload } from './smp/run.ts';
import { formatRunReport } from './report/run-report.ts';
import { saveRunLog } from './smp/run-log.ts';
import { randomSeed } from './util/prng.ts';
import type { Policy } from './actor/scheduler.ts';
import { CHECK_OPTIONS, MACHINE_OPTIONS, parseMutant } from './cli-options.ts';
import { type Flags, STRESS_HELP, STRESS_OPTIONS, mutantsMain, replayRunMain, stressMain } from './stress/cli-stress.ts';

export class UsageError extends Error {}

interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<number>;
}

const GLOBAL_HELP = `percpu-sim: a concurrent SMP simulator of the Linux per-CPU allocator (mm/percpu.c, 2.6.36)

Usage: percpu-sim <command> [options]

Commands:
${'{commands}'}

Examples:
  percpu-sim run                      the default demo on 4 CPUs (npm start)
  percpu-sim run numa --nodes 4 --cpus 8
  percpu-sim stress --duration 30
  percpu-sim stress --mutant reclaim-drops-mutex
  percpu-sim replay trace.jsonl

Run "percpu-sim <command> --help" for a command's options and examples.
Exit status: 0 success, 1 the run found a failure, 2 bad usage or bad input.`;

const EXAMPLES_DIR = new URL('../examples/', import.meta.url);

function exampleNames(): string[] {
  try {
    return readdirSync(fileURLToPath(EXAMPLES_DIR))
      .filter((f) => /\.[tj]s$/.test(f))
      .map((f) => f.slice(0, -3))
      .sort();
  } catch {
    return [];
  }
}

const flags: Flags = {
  int: (flag, v, min, max, dflt) => int(flag, v, min, max, dflt),
  oneOf: (flag, v, allowed, dflt) => oneOf(flag, v, allowed, dflt),
  num: (flag, v, min, max, dflt) => num(flag, v, min, max, dflt),
  fail: (msg) => {
    throw new UsageError(msg);
  },
  progress: (quiet) => progressBar(quiet),
};

const commands: Record<string, Command> = {
  stress: {
    summary: 'seeded stress with every checker on; prints a seed that replays any failure',
    help: STRESS_HELP,
    async run(argv) {
      const { values, positionals } = parse(argv, STRESS_OPTIONS);
      if (positionals.length) throw new UsageError(`stress takes no arguments, got ${positionals.join(' ')}`);
      return stressMain(values, flags);
    },
  },
  mutants: {
    summary: 'list the historical bugs that --mutant brings back',
    help: `Usage: percpu-sim mutants [--json]

Lists the historical percpu bugs that percpu-sim stress --mutant NAME reintroduces, each with
the bug it recreates and the checkers that catch it. --json prints an array of
{ "name", "bug", "caught_by" }.`,
    async run(argv) {
      const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
      if (positionals.length) throw new UsageError(`mutants takes no arguments, got ${positionals.join(' ')}`);
      return mutantsMain(values.json === true);
    },
  },
  'replay-run': {
    summary: 'replay a run saved with stress --save or run --save, and say whether it ends the same way',
    help: `Usage: percpu-sim replay-run FILE [--json]

Replays a saved run and reports whether it ends the same way.

  - A stress run (percpu-sim stress --save FILE) is rerun from its configuration, seed and,
    for an explored schedule, its choices; the verdict and the first violation must match.
    Exit status: 0 when the replay is clean, 1 when it finds a violation.
  - A run on worker threads (percpu-sim run --save FILE, or stress --workers --save FILE) is
    replayed from its event log without any worker: every allocator reply and the final
    allocator state must match. Exit status: 0 when they do, 1 when they do not.

Exit status 2 for bad usage or a file that is not a saved run.`,
    async run(argv) {
      const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
      if (positionals.length !== 1) throw new UsageError('replay-run needs exactly one FILE');
      return replayRunMain(positionals[0]!, values.json === true, flags);
    },
  },
  run: {
    summary: 'boot an SMP machine and run a workload on every CPU (the default demo without a name)',
    get help() {
      return `Usage: percpu-sim run [EXAMPLE|FILE] [options]

Boots a simulated SMP machine in the kernel's order (setup_per_cpu_areas, early allocations,
slab online, percpu_init_late, secondary CPUs), runs the workload on one worker thread per
CPU, then shuts down: leaks are freed and reported, and page accounting must return to its
post-boot state. Prints the boot lines, a per-CPU summary, a percpu_stats dump and a verdict.

Examples: ${exampleNames().join(', ') || '(none found)'}   (default: demo)

Options:
  --cpus N            simulated CPUs, one worker thread each (default 4)
  --nodes N           NUMA nodes; more than one groups CPUs by node (default 1)
  --backend vm|km     chunk backend (default vm)
  --memory MIB        physical memory (default 64)
  --seed N            seed of every random choice (default: random, printed)
  --policy P          scheduler: random, fifo or pct (default random)
  --arg KEY=VALUE     override a workload argument (repeatable)
  --timeout S         bound on each phase of each CPU, in seconds (default 120)
  --no-check          skip the checkers (allocator invariants, lock rules, isolation)
  --count             count isolation violations and go on, instead of stopping
  --strict            report schedule_work() under pcpu_lock as a lock violation
  --mutant NAME       bring back a historical bug (see percpu-sim mutants)
  --save FILE         save the run's event log; percpu-sim replay-run FILE replays it
  --svg FILE          draw every chunk (areas, populated pages) as it was when the workload ended
  --json              print the report as JSON
  -h, --help          this text

Exit status: 0 when the run passes, 1 when it fails (a failed check, a kernel BUG, a crashed
CPU), 2 for bad usage.

Examples:
  percpu-sim run counter --cpus 8 --arg adds=5000000
  percpu-sim run churn --seed 7 --backend km
  percpu-sim run lifecycle --json`;
    },
    async run(argv) {
      const { values, positionals } = parse(argv, {
        ...MACHINE_OPTIONS,
        ...CHECK_OPTIONS,
        arg: { type: 'string', multiple: true },
        timeout: { type: 'string' },
        'no-check': { type: 'boolean' },
        svg: { type: 'string' },
      });
      if (positionals.length > 1) throw new UsageError(`run takes one workload, got ${positionals.join(' ')}`);
      const svg = values.svg;
      const mutant = parseMutant(values.mutant, flags.fail);
      const workload = positionals[0] ?? 'demo';
      const args: Record<string, number | string | boolean> = {};
      for (const a of (values.arg as string[] | undefined) ?? []) {
        const m = /^([A-Za-z_][\w-]*)=(.*)$/.exec(a);
        if (!m) throw new UsageError(`--arg must look like KEY=VALUE, got "${a}"`);
        const v = m[2]!;
        args[m[1]!] = v === 'true' ? true : v === 'false' ? false : /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
      }
      const seed = values.seed === undefined ? randomSeed() : int('--seed', values.seed, 0, 2 ** 32 - 1, 0);
      const json = values.json === true;
      const bar = progressBar(json);
      let report;
      try {
        report = await runWorkload({
          workload,
          args,
          ...(values.cpus !== undefined ? { cpus: int('--cpus', values.cpus, 1, 256, 4) } : {}),
          ...(values.nodes !== undefined ? { nodes: int('--nodes', values.nodes, 1, 16, 1) } : {}),
          ...(values.backend !== undefined ? { backend: oneOf('--backend', values.backend, ['vm', 'km'] as const, 'vm') } : {}),
          ...(mutant !== undefined ? { mutant } : {}),
          ...(values.count ? { countViolations: true } : {}),
          strictLocks: values.strict === true,
          memoryMiB: int('--memory', values.memory, 16, 4096, 64),
          seed,
          policy: oneOf('--policy', values.policy, ['random', 'fifo', 'pct'] as const, 'random') as Policy,
          check: values['no-check'] !== true,
          phaseTimeoutMs: int('--timeout', values.timeout, 1, 3600, 120) * 1000,
          onProgress: bar,
          ...(typeof svg === 'string' ? { onRunDone: (pc: Percpu) => writeFileSync(svg, allocatorSvg(pc, `percpu-sim run ${workload}, seed ${seed}`)) } : {}),
        });
      } catch (e) {
        if ((e as Error).message.startsWith('no workload')) throw new UsageError((e as Error).message);
        throw e;
      }
      if (typeof values.save === 'string') saveRunLog(values.save, report);
      const { log: _log, fingerprint: _fp, ...data } = report;
      process.stdout.write((json ? JSON.stringify(data, null, 2) : formatRunReport(report)) + '\n');
      return report.verdict === 'pass' ? 0 : 1;
    },
  },
  replay: {
    summary: 'replay a JSON Lines trace of allocator operations, one JSON result line per operation',
    help: `Usage: percpu-sim replay FILE [--memory MIB] [--svg OUT]

Replays a trace through the kernel's allocator and prints one JSON line per operation to
standard output. FILE is a path, or - for standard input. Input lines:

  {"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}
  {"op":"alloc","id":"a1","size":16,"align":8}
  {"op":"alloc","id":"m1","size":100,"align":8,"reserved":true}
  {"op":"free","id":"a1"}
  {"op":"slab_online"}
  {"op":"init_late"}

"boot" may also carry cpus (default 4), nodes, atom_size and backend ("vm" or "km").
Output lines name the chunk ("reserved", 0 for the first chunk, then 1, 2, ... in order of
creation) and the offset inside the unit, or "chunk":null and the kernel's reason.

Options:
  --memory MIB   physical memory of the replay machine (default 4096)
  --svg OUT      also draw the final state of every chunk (areas and populated pages) as SVG
  -h, --help     this text

A bad line stops the replay with exit status 2 and a message naming the line; the lines
before it have been printed. The format is specified in docs/replay-format.md.

Example:
  printf '%s\\n' '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}' \\
                 '{"op":"alloc","id":"a","size":16,"align":8}' | percpu-sim replay -`,
    async run(argv) {
      const { values, positionals } = parse(argv, { memory: { type: 'string' }, svg: { type: 'string' } });
      if (positionals.length !== 1) throw new UsageError('replay needs exactly one FILE (or - for standard input)');
      const file = positionals[0]!;
      const memoryBytes = values.memory === undefined ? undefined : mib('--memory', values.memory, 16, 4096);
      let text: string;
      try {
        text = file === '-' ? await readStdin() : readFileSync(file, 'utf8');
      } catch (e) {
        throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
      }
      const out = new LineWriter();
      try {
        const onResourceLimit = (m: string): void => void process.stderr.write(`percpu-sim replay: warning: ${m}\n`);
        const summary = replayText(text, (l) => out.line(l), memoryBytes === undefined ? { onResourceLimit } : { memoryBytes, onResourceLimit });
        if (typeof values.svg === 'string' && summary.pc) writeFileSync(values.svg, allocatorSvg(summary.pc, `percpu-sim replay ${file}`));
      } catch (e) {
        out.flush();
        if (e instanceof BadInput) {
          process.stderr.write(`percpu-sim replay: ${file === '-' ? '<stdin>' : file}: ${e.message}\n`);
          return 2;
        }
        throw e;
      }
      out.flush();
      return 0;
    },
  },
  boot: {
    summary: 'boot a machine and print the percpu boot lines (setup_per_cpu_areas)',
    help: `Usage: percpu-sim boot [options]

Builds the first chunk the way setup_per_cpu_areas() does and prints the kernel's boot
lines: "PERCPU: Embedded ..." (or the page first chunk's line) and the pcpu-alloc dump.

Options:
  --cpus N          possible CPUs (default 4)
  --nodes N         NUMA nodes; CPUs are spread over them in blocks (default 1)
  --numa            group CPUs by node distance (sparse groups); needs --nodes > 1
  --backend vm|km   chunk backend (default vm)
  --fc embed|page   first chunk allocator (default embed)
  --static BYTES    static percpu section size (default ${DEFAULT_STATIC_SIZE})
  --reserved BYTES  reserved area for modules (default ${PERCPU_MODULE_RESERVE})
  --dyn BYTES       dynamic area (default ${PERCPU_DYNAMIC_RESERVE})
  --atom BYTES      allocation atom, e.g. 2097152 for large pages (default 4096)
  --memory MIB      physical memory (default 64)
  -h, --help        this text

Example:
  percpu-sim boot --cpus 8 --nodes 2 --numa --atom 2097152`,
    async run(argv) {
      const { values, positionals } = parse(argv, {
        cpus: { type: 'string' },
        nodes: { type: 'string' },
        numa: { type: 'boolean' },
        backend: { type: 'string' },
        fc: { type: 'string' },
        static: { type: 'string' },
        reserved: { type: 'string' },
        dyn: { type: 'string' },
        atom: { type: 'string' },
        memory: { type: 'string' },
      });
      if (positionals.length) throw new UsageError(`boot takes no arguments, got ${positionals.join(' ')}`);
      const backend = oneOf('--backend', values.backend, ['vm', 'km'] as const, 'vm');
      const fc = oneOf('--fc', values.fc, ['embed', 'page'] as const, 'embed');
      const machine = new Machine({
        cpus: int('--cpus', values.cpus, 1, 1024, 4),
        nodes: int('--nodes', values.nodes, 1, 16, 1),
        memoryBytes: mib('--memory', values.memory ?? '64', 16, 4096),
      });
      const pc = setup_per_cpu_areas(machine, {
        backend: backend as BackendKind,
        fc: fc as FirstChunkKind,
        numa_groups: values.numa === true,
        static_size: int('--static', values.static, 1, 1 << 24, DEFAULT_STATIC_SIZE),
        reserved_size: int('--reserved', values.reserved, 0, 1 << 24, PERCPU_MODULE_RESERVE),
        dyn_size: int('--dyn', values.dyn, 0, 1 << 24, PERCPU_DYNAMIC_RESERVE),
        atom_size: int('--atom', values.atom, 4096, 1 << 30, 4096),
      });
      process.stdout.write(pc.dmesg.join('\n') + '\n');
      return 0;
    },
  },
};

/** Runs the command line; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const which = name === 'help' ? rest[0] : undefined;
    if (which && commands[which]) process.stdout.write(commands[which].help + '\n');
    else process.stdout.write(globalHelp() + '\n');
    return name === undefined ? 2 : 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`percpu-sim: unknown command "${name}"\n\n${globalHelp()}\n`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(cmd.help + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`percpu-sim ${name}: ${(e as Error).message}\nRun "percpu-sim ${name} --help" for usage.\n`);
      return 2;
    }
    if ((e as Error).name === 'KernelBug' || (e as Error).name === 'MemError') {
      process.stderr.write(`percpu-sim ${name}: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}

const HELP_ORDER = ['run', 'stress', 'replay', 'replay-run', 'mutants', 'boot'];

function globalHelp(): string {
  const list = Object.entries(commands)
    .sort(([a], [b]) => HELP_ORDER.indexOf(a) - HELP_ORDER.indexOf(b))
    .map(([n, c]) => `  ${n.padEnd(12)} ${c.summary}`)
    .join('\n');
  return GLOBAL_HELP.replace('{commands}', list);
}

function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

function int(flag: string, v: unknown, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n))
    throw new UsageError(`${flag} must be a whole number, got "${String(v)}"`);
  if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function num(flag: string, v: unknown, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got "${String(v)}"`);
  if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function mib(flag: string, v: unknown, min: number, max: number): number {
  return int(flag, v, min, max, 0) * 1024 * 1024;
}

function oneOf<T extends string>(flag: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!allowed.includes(v as T)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got "${String(v)}"`);
  return v as T;
}

/** Phase progress on standard error: a bar on a terminal, plain lines otherwise. */
function progressBar(quiet: boolean): (phase: string, done: number, total: number) => void {
  const tty = process.stderr.isTTY === true;
  return (phase, done, total) => {
    if (quiet && !tty) return;
    const width = 20;
    const filled = Math.round((done / total) * width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${phase}`;
    if (tty) process.stderr.write(`\r\x1b[K${line}${done === total ? '\n' : ''}`);
    else process.stderr.write(line + '\n');
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Buffers output lines and writes them in large blocks. */
class LineWriter {
  private buf: string[] = [];
  private size = 0;

  line(s: string): void {
    this.buf.push(s);
    this.size += s.length + 1;
    if (this.size > 1 << 16) this.flush();
  }

  flush(): void {
    if (!this.buf.length) return;
    process.stdout.write(this.buf.join('\n') + '\n');
    this.buf = [];
    this.size = 0;
  }
}
