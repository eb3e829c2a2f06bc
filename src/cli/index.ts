/**
 * The command line: one file per command in this folder; this one dispatches and prints the
 * global help. Exit status everywhere: 0 success, 1 the run found a failure, 2 bad usage or
 * bad input.
 */
import { readFileSync } from 'node:fs';
import {
  type Command,
  UsageError,
  escapeControl,
  interruptedExit,
  joinNegativeValues,
  stdoutWritten,
} from './common.ts';
export { watchStdout } from './common.ts';

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

Run "percpu-sim <command> --help" for a command's options and examples; --verbose shows the
stack of an internal error; --version prints the version.
Exit status: 0 success, 1 the run found a failure, 2 bad usage or bad input, 3 a run that
stopped making progress (timed out), 70 an internal error, 130/143 interrupted.`;

/**
 * Each command's module, loaded when it runs: a command pays at start-up only for what it
 * imports itself (replay's reader does not load the SMP machine, the checkers or the reports).
 */
const commands: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./run.ts')).run,
  stress: async () => (await import('./stress.ts')).stress,
  merge: async () => (await import('./merge.ts')).merge,
  replay: async () => (await import('./replay.ts')).replay,
  ftrace: async () => (await import('./ftrace.ts')).ftrace,
  'replay-run': async () => (await import('./replay-run.ts')).replayRun,
  mutants: async () => (await import('./mutants.ts')).mutants,
  boot: async () => (await import('./boot.ts')).boot,
  dmesg: async () => (await import('./dmesg.ts')).dmesg,
};
const isCommand = (name: string): boolean => Object.hasOwn(commands, name);

/** Runs the command line; returns the exit status, once standard output is written (see stdoutWritten). */
export async function main(argv: string[]): Promise<number> {
  const name = argv.find((a) => a !== '--verbose');
  const status = await dispatch(argv);
  // an interrupted command has written what finished: it ends as the signal says
  return stdoutWritten(name !== undefined && isCommand(name) ? name : '', interruptedExit() ?? status);
}

async function dispatch(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const [name, ...rest] = argv.filter((a) => a !== '--verbose');
  if (name === undefined) {
    // no command is a usage error: the help goes where errors go
    process.stderr.write((await globalHelp()) + '\n');
    return 2;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`percpu-sim ${version()}\n`);
    return 0;
  }
  if (name === '-h' || name === '--help' || name === 'help') {
    const which = name === 'help' ? rest[0] : undefined;
    if (which === undefined) process.stdout.write((await globalHelp()) + '\n');
    else if (isCommand(which)) process.stdout.write((await commands[which]!()).help + '\n');
    else {
      process.stderr.write(
        `percpu-sim help: no command "${escapeControl(which)}"; the commands are ${Object.keys(commands).join(', ')}\n`,
      );
      return 2;
    }
    return 0;
  }
  if (!isCommand(name)) {
    process.stderr.write(`percpu-sim: unknown command "${escapeControl(name)}"\n\n${await globalHelp()}\n`);
    return 2;
  }
  const cmd = await commands[name]!();
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(cmd.help + '\n');
    return 0;
  }
  try {
    return await cmd.run(joinNegativeValues(rest));
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS')) {
      const message = e instanceof UsageError ? err.message : parseArgsMessage(err.message);
      process.stderr.write(
        `percpu-sim ${name}: ${escapeControl(message)}\nRun "percpu-sim ${name} --help" for usage.\n`,
      );
      return 2;
    }
    if (err.name === 'KernelBug' || err.name === 'MemError' || err.name === 'ConfigError') {
      const hint = err.message.replace('give the machine more memory', 'give the machine more memory with --memory');
      process.stderr.write(`percpu-sim ${name}: ${escapeControl(hint)}\n`);
      return 2;
    }
    // not a JavaScript stack trace for the user, unless asked
    process.stderr.write(
      `percpu-sim ${name}: internal error: ${escapeControl(err.message ?? String(e))}${verbose ? `\n${err.stack ?? ''}` : ' (--verbose shows where)'}\n`,
    );
    return 70;
  }
}

/** node:util's parseArgs explains itself over several lines; one is enough here. */
function parseArgsMessage(m: string): string {
  const ambiguous = /Option '(-[-\w]+)'.* argument is ambiguous/.exec(m);
  if (ambiguous) return `${ambiguous[1]} needs a value (write ${ambiguous[1]}=VALUE for a value that starts with "-")`;
  const unknown = /Unknown option '([^']+)'/.exec(m);
  if (unknown) return `unknown option ${unknown[1]}`;
  const missing = /Option '(-[-\w]+)(?: <value>)?' argument missing/.exec(m);
  if (missing) return `${missing[1]} needs a value`;
  return m.split('\n')[0]!;
}

/** The package's version, from its package.json. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const HELP_ORDER = ['run', 'stress', 'merge', 'replay', 'ftrace', 'replay-run', 'mutants', 'boot', 'dmesg'];

async function globalHelp(): Promise<string> {
  const names = Object.keys(commands).sort((a, b) => HELP_ORDER.indexOf(a) - HELP_ORDER.indexOf(b));
  const loaded = await Promise.all(names.map((n) => commands[n]!()));
  const list = names.map((n, i) => `  ${n.padEnd(12)} ${loaded[i]!.summary}`).join('\n');
  return GLOBAL_HELP.replace('{commands}', list);
}
