/**
 * What every command shares: usage errors, flag parsing and checking (the flags of the
 * machine and of the checks; schema-flags.ts has the flags checked against a file's schema),
 * the progress bar, and reading and writing streams. A command parses its own flags,
 * prints its own --help, and returns an exit status: 0 success, 1 a failure the run found,
 * 2 bad usage or bad input.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MUTANT_NAMES, type MutantName, isMutant } from '../kernel/mutants.ts';

export class UsageError extends Error {}

/** Bad usage: the message, and exit status 2. */
export function usage(msg: string): never {
  throw new UsageError(msg);
}

export type Signal = 'SIGINT' | 'SIGTERM';

/** How a command ends on a signal (see onInterrupt). */
export interface InterruptPlan {
  /**
   * The command stops its work through this signal and writes the report of what finished
   * the ordinary way; main() then exits 130 or 143. A command that takes longer than
   * DRAIN_MS to do so, or a second signal, ends the process at once.
   */
  drain?: AbortController;
  /** Writes what can be written of the run (synchronously) before the process ends. */
  flush?: (signal: Signal) => void;
}

/** How long a command may take to write its report after a signal. */
export const DRAIN_MS = 15_000;

let interruptStatus: (() => string) | null = null;
let interruptPlan: InterruptPlan = {};
let received: Signal | null = null;

const exitStatusOf = (sig: Signal): number => (sig === 'SIGINT' ? 130 : 143);

/**
 * What to do if the user interrupts a long run (Ctrl-C or SIGTERM, such as a CI job's time
 * limit): say the seed, what finished and the command that reruns it, write what finished
 * (see InterruptPlan), and exit 130 (SIGINT) or 143 (SIGTERM). A command whose work is one
 * long loop runs it stepped (drive()), so that the handler gets its turn.
 */
export function onInterrupt(command: string, status: () => string, plan: InterruptPlan = {}): void {
  if (!interruptStatus)
    for (const sig of ['SIGINT', 'SIGTERM'] as const)
      process.on(sig, () => {
        const exit = (): void => {
          process.stderr.write('', () => process.exit(exitStatusOf(sig)));
        };
        if (received) return exit();
        // what was written to standard output may still wait in a pipe's queue: out first, unless
        // its reader never takes it
        const flushed = (): void => {
          setTimeout(exit, DRAIN_MS).unref();
          process.stdout.write('', exit);
        };
        received = sig;
        const { drain, flush } = interruptPlan;
        const what = drain ? '; writing the report of what finished' : '';
        process.stderr.write(`\npercpu-sim ${command}: interrupted (${sig}); ${interruptStatus?.() ?? ''}${what}\n`);
        if (drain) {
          setTimeout(() => {
            process.stderr.write(`percpu-sim ${command}: the report was not written within ${DRAIN_MS / 1000} s\n`);
            exit();
          }, DRAIN_MS).unref();
          drain.abort(new Error(`interrupted (${sig})`));
          return;
        }
        try {
          flush?.(sig);
        } finally {
          flushed();
        }
      });
  interruptStatus = status;
  interruptPlan = plan;
}

/** The signal that interrupted the command, if one did. */
export function interrupted(): Signal | null {
  return received;
}

/** The exit status of an interrupted command (130 or 143), or null. */
export function interruptedExit(): number | null {
  return received ? exitStatusOf(received) : null;
}

/**
 * Seed numbers, short: runs of three or more consecutive seeds as "a..b", at most `max` items, then how
 * many there are in all.
 */
export function seedList(seeds: readonly number[], max = 8): string {
  const sorted = [...seeds].sort((a, b) => a - b);
  const items: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    if (j - i >= 2) items.push(`${sorted[i]}..${sorted[j]}`);
    else for (let k = i; k <= j; k++) items.push(`${sorted[k]}`);
    i = j + 1;
  }
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')}, ... (${sorted.length} in all)`;
}

let stdoutWatched = false;
let stdoutFailure: NodeJS.ErrnoException | null = null;

/**
 * Watches standard output for the whole process: a reader that goes away (percpu-sim replay
 * big.jsonl | head -1) ends the program quietly; any other failure (a full disk) is kept for
 * stdoutWritten(), so that a lost report is never a success.
 */
export function watchStdout(): void {
  stdoutWatched = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    stdoutFailure ??= e;
  });
}

/**
 * Once standard output is written: the status, or, when it could not be written, a line on
 * standard error that says so and the status 2 in place of a clean one (a failing run keeps its own).
 */
export async function stdoutWritten(command: string, status: number): Promise<number> {
  // inside a program that owns its standard output (the tests), there is nothing to wait for
  if (!stdoutWatched) return status;
  // a stream that has failed keeps what it holds and calls no write back: nothing to wait for
  const failed = stdoutFailure ?? (process.stdout.errored as NodeJS.ErrnoException | null);
  const late = failed ? null : await new Promise<Error | null | undefined>((r) => process.stdout.write('', r));
  const e = (failed ?? late) as NodeJS.ErrnoException | null | undefined;
  if (!e) return status;
  process.stderr.write(
    `percpu-sim${command ? ` ${command}` : ''}: could not write to standard output (${e.code ?? e.message}); the report is lost or cut short\n`,
  );
  return status === 0 ? 2 : status;
}

/**
 * A wait for standard output to take what it holds, when a pipe's reader is behind; null when
 * nothing waits. It ends on 'drain', and on 'error' or 'close' too: a failed output is
 * stdoutWritten()'s to report, not a reason to wait for ever, or to fail here.
 */
export function stdoutBacklog(): Promise<void> | null {
  const out = process.stdout;
  // with nothing held, or after a failure, no 'drain' may ever come
  if (!out.writableNeedDrain || !out.writableLength || out.destroyed || out.errored || stdoutFailure) return null;
  return new Promise((resolve) => {
    const done = (): void => {
      out.off('drain', done).off('error', done).off('close', done);
      resolve();
    };
    out.once('drain', done).once('error', done).once('close', done);
  });
}

/** Control characters as escapes (tab and newline kept), so input cannot drive the terminal. */
export function escapeControl(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * "--cpus -1" reads as a flag followed by an option "-1", which parseArgs refuses as ambiguous;
 * joined as "--cpus=-1" it reaches the flag's own check, which says what the range is.
 */
export function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (/^--[a-z][\w-]*$/.test(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<number>;
}

export const MACHINE_OPTIONS = {
  cpus: { type: 'string' },
  nodes: { type: 'string' },
  'cpu-nodes': { type: 'string' },
  distance: { type: 'string' },
  backend: { type: 'string' },
  memory: { type: 'string' },
  seed: { type: 'string' },
  policy: { type: 'string' },
} as const;

/** Checking and output flags. */
export const CHECK_OPTIONS = {
  mutant: { type: 'string' },
  strict: { type: 'boolean' },
  count: { type: 'boolean' },
  save: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

export function int(flag: string, v: unknown, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !/^-?\d+$/.test(v))
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${escapeControl(String(v))}"`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${flag} must be between ${min} and ${max}, got ${v}`);
  return n;
}

export function num(flag: string, v: unknown, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`${flag} must be a number, got "${String(v)}"`);
  if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function mib(flag: string, v: unknown, min: number, max: number): number {
  return int(flag, v, min, max, 0) * 1024 * 1024;
}

export function oneOf<T extends string>(flag: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!allowed.includes(v as T))
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got "${String(v)}"`);
  return v as T;
}

/** The --mutant value, checked against the list. */
export function parseMutant(v: unknown): MutantName | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !isMutant(v))
    return usage(`--mutant must be one of ${MUTANT_NAMES.join(', ')}, got "${String(v)}"`);
  return v;
}

/** How often progress is written: a terminal's bar is redrawn, a log (CI) gets a line now and then. */
export const PROGRESS_TTY_MS = 100;
export const PROGRESS_LOG_MS = 5000;

/**
 * Phase progress on standard error: a bar on a terminal, plain lines otherwise. A total of 0
 * means the end is not known: the phase is shown without a bar. Lines to a file or pipe come
 * at most every PROGRESS_LOG_MS, besides the first and the last, so that a CI log holds a few
 * lines, not one per step.
 */
export function progressBar(
  quiet: boolean,
  clock: () => number = Date.now,
): (phase: string, done: number, total: number, detail?: string) => void {
  const tty = process.stderr.isTTY === true;
  let last = -Infinity;
  return (phase, done, total, detail) => {
    if (quiet && !tty) return;
    const end = total > 0 && done >= total;
    const now = clock();
    if (!end && now - last < (tty ? PROGRESS_TTY_MS : PROGRESS_LOG_MS)) return;
    last = now;
    const width = 20;
    const filled = Math.round((Math.min(done, total) / total) * width);
    const what = detail ? `${phase}, ${detail}` : phase;
    const line = total > 0 ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${what}` : what;
    if (tty) process.stderr.write(`\r\x1b[K${line}${end ? '\n' : ''}`);
    else process.stderr.write(line + '\n');
  };
}

/**
 * Runs a stepped computation (src/util/steps.ts), giving the event loop a turn at each of its
 * yields: a signal's handler runs there (and the computation goes no further), and `onStep`
 * hears how far it is. `ready` may hold it there longer: until the promise it gives settles
 * (output waiting for a slow reader, say).
 */
export async function drive<T>(
  g: Generator<number, T>,
  onStep: (n: number) => void = () => {},
  ready: () => Promise<unknown> | null = () => null,
): Promise<T> {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
    onStep(r.value);
    await (ready() ?? new Promise((resolve) => setImmediate(resolve)));
    // a signal's handler is writing what finished and ending the process: no more work
    if (received) await new Promise(() => {});
  }
}

export async function readStdin(): Promise<string> {
  return (await readStdinBytes()).toString('utf8');
}

export async function readStdinBytes(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Buffers output lines and writes them in large blocks. */
export class LineWriter {
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

/** The most NUMA nodes a machine has (MAX_NUMNODES of the simulated memory). */
export const MAX_NODES = 16;

/**
 * --cpu-nodes: the node of every CPU, either as a list ("0,1,0,1": CPU n on the n-th node)
 * or as ranges ("0-15:0,16-31:1", a single CPU as "7:1") that cover CPUs 0 to N-1 once each.
 * Checked against --cpus and --nodes when they are given; otherwise they follow from it.
 */
export function cpuNodesFlag(
  v: unknown,
  cpus: number | undefined,
  nodes: number | undefined,
): { cpuToNode: number[]; cpus: number; nodes: number } | undefined {
  if (v === undefined) return undefined;
  const text = String(v).trim();
  const bad = (why: string): never =>
    usage(`--cpu-nodes ${why} (write it as "0,1,0,1" or "0-15:0,16-31:1"), got "${escapeControl(text)}"`);
  const items = text.split(',').map((s) => s.trim());
  const ranged = items.map((s) => s.includes(':'));
  if (ranged.some((r) => r !== ranged[0])) bad('mixes a list of nodes with CPU ranges');
  const map: number[] = [];
  const whole = (s: string, what: string): number => (/^\d+$/.test(s) ? Number(s) : bad(`has "${s}" for ${what}`));
  for (const item of items) {
    if (!ranged[0]) {
      map.push(whole(item, 'a node'));
      continue;
    }
    const m = /^([^:-]+)(?:-([^:]+))?:(.*)$/.exec(item) ?? bad(`has "${item}" for a range`);
    const first = whole(m[1]!, 'a CPU');
    const last = m[2] === undefined ? first : whole(m[2], 'a CPU');
    const node = whole(m[3]!, 'a node');
    if (last < first) bad(`has the range ${first}-${last}, which runs backwards`);
    if (last >= 4096) bad(`names CPU ${last}; CPUs go up to 4095`);
    for (let cpu = first; cpu <= last; cpu++) {
      if (map[cpu] !== undefined) bad(`puts CPU ${cpu} in two ranges`);
      map[cpu] = node;
    }
  }
  const gap = Array.from({ length: map.length }, (_, i) => i).find((i) => map[i] === undefined);
  if (gap !== undefined) bad(`leaves CPU ${gap} without a node`);
  if (cpus !== undefined && map.length !== cpus)
    usage(`--cpu-nodes places ${map.length} CPUs, but --cpus is ${cpus}: give a node for every CPU`);
  const highest = Math.max(...map);
  if (nodes !== undefined && highest >= nodes)
    usage(
      `--cpu-nodes puts CPU ${map.indexOf(highest)} on node ${highest}, but --nodes is ${nodes} (nodes 0 to ${nodes - 1})`,
    );
  const count = nodes ?? highest + 1;
  if (count > MAX_NODES) usage(`--cpu-nodes names node ${highest}; a machine has at most ${MAX_NODES} nodes`);
  return { cpuToNode: map, cpus: map.length, nodes: count };
}

/**
 * --distance: node_distance() between nodes, as one remote distance for every pair ("21") or
 * as the whole table, rows separated by "/" ("10,21/21,10"). A node is 10 from itself.
 */
export function distanceFlag(v: unknown, nodes: number): number[][] | undefined {
  if (v === undefined) return undefined;
  const text = String(v).trim();
  const value = (s: string): number => {
    const n = /^\d+$/.test(s.trim()) ? Number(s) : NaN;
    if (!(n >= 10 && n <= 255))
      usage(`--distance must hold whole numbers from 10 to 255 (10 is local), got "${escapeControl(s)}"`);
    return n;
  };
  if (!/[,/]/.test(text)) {
    const remote = value(text);
    return Array.from({ length: nodes }, (_, a) => Array.from({ length: nodes }, (_, b) => (a === b ? 10 : remote)));
  }
  const rows = text.split('/').map((r) => r.split(',').map(value));
  if (rows.length !== nodes || rows.some((r) => r.length !== nodes))
    usage(`--distance must be a ${nodes}x${nodes} table for ${nodes} nodes (rows separated by "/"), got "${text}"`);
  rows.forEach((r, a) => {
    if (r[a] !== 10) usage(`--distance: a node is 10 from itself, but row ${a} says ${r[a]}`);
  });
  return rows;
}
