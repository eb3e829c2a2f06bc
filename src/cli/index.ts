/**
 * The command line: one file per command in this folder; this one dispatches and prints the
 * global help. Exit status everywhere: 0 success, 1 the run found a failure, 2 bad usage or
 * bad input.
 */
import { boot } from './boot.ts';
import { ftrace } from './ftrace.ts';
import { type Command, UsageError } from './common.ts';
import { mutants } from './mutants.ts';
import { replayRun } from './replay-run.ts';
import { replay } from './replay.ts';
import { run } from './run.ts';
import { stress } from './stress.ts';

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

const commands: Record<string, Command> = { run, stress, replay, ftrace, 'replay-run': replayRun, mutants, boot };

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

const HELP_ORDER = ['run', 'stress', 'replay', 'ftrace', 'replay-run', 'mutants', 'boot'];

function globalHelp(): string {
  const list = Object.entries(commands)
    .sort(([a], [b]) => HELP_ORDER.indexOf(a) - HELP_ORDER.indexOf(b))
    .map(([n, c]) => `  ${n.padEnd(12)} ${c.summary}`)
    .join('\n');
  return GLOBAL_HELP.replace('{commands}', list);
}

