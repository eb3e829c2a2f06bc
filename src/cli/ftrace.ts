/** `percpu-sim ftrace`: replay a modern kernel's percpu tracepoint log through 2.6.36. */
import { ftraceSmpCommand } from '../files/rerun.ts';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { FtraceError, parseFtraceSteps, printable, toReplayOps } from '../trace/ftrace.ts';
import { STEP } from '../util/steps.ts';
import { PERCPU_DYNAMIC_RESERVE, PERCPU_MODULE_RESERVE } from '../kernel/constants.ts';
import { DEFAULT_STATIC_SIZE } from '../kernel/setup.ts';
import { BadInput } from '../trace/replay.ts';
import { compareFtraceSteps, formatFtraceComparison } from '../report/ftrace-report.ts';
import {
  type Command,
  LineWriter,
  UsageError,
  drive,
  int,
  mib,
  onInterrupt,
  parse,
  progressBar,
  readStdinBytes,
} from './common.ts';
import { ftraceSmp } from '../smp/ftrace-smp.ts';
import { formatRunReport } from '../report/run-report.ts';

export const ftrace: Command = {
  summary: "replay a kernel's percpu tracepoint log (trace_event=percpu:*) through 2.6.36",
  help: `Usage: percpu-sim ftrace FILE [options]

Reads the percpu tracepoints of a modern kernel (4.14 on) as tracefs prints them
(/sys/kernel/tracing/trace, trace_pipe) or as trace-cmd report does, and replays every
allocation and free through the 2.6.36 allocator. FILE is a path, or - for standard input.
Capture one with "trace_event=percpu:*" on the kernel command line, or with
  echo 1 > /sys/kernel/tracing/events/percpu/enable; cat /sys/kernel/tracing/trace_pipe

Every field generation is read (4.14; 5.19 on with call_site, bytes_alloc and gfp_flags;
hashed or raw pointers; the fail event with or without do_warn). Frees are matched to their
allocations by pointer; frees of pointers allocated before the trace began are counted.
Other events, comment lines and lines that are not text are skipped and counted. A gzip file
is decompressed; trace-cmd's binary trace.dat is not read: give the text of
  trace-cmd report -i trace.dat > trace.txt

By default it prints, side by side, what the traced kernel did and what 2.6.36 does with the
same requests: chunks created and destroyed, allocations per chunk, the most live bytes,
populated pages, failures and fragmentation.

Options:
  --to-jsonl        print the operations in the replay format instead (docs/replay-format.md),
                    for percpu-sim replay and the other commands
  --json            print the comparison as JSON
  --smp             drive the SMP machine instead: each traced CPU's operations are issued by
                    that CPU's worker thread, in trace order, with every checker on
  --cpus N          CPUs of the replay machine (default: as many as the trace shows)
  --static BYTES    the first chunk's static area (default ${DEFAULT_STATIC_SIZE})
  --reserved BYTES  its reserved area for modules (default ${PERCPU_MODULE_RESERVE})
  --dyn BYTES       its dynamic area (default ${PERCPU_DYNAMIC_RESERVE})
  --memory MIB      physical memory of the replay machine (default 4096; --smp: 256)
  --seed N          the SMP run's seed (default 1)
  --lenient         skip and count malformed percpu lines instead of stopping at the first
  -h, --help        this text

A malformed percpu line stops the command with exit status 2 and names its line and field.

Examples:
  percpu-sim ftrace test/fixtures/ftrace/workload-5.19.report
  percpu-sim ftrace boot.trace --to-jsonl > boot.jsonl && percpu-sim replay boot.jsonl
  percpu-sim ftrace test/fixtures/ftrace/pipe-6.1.txt --smp`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      'to-jsonl': { type: 'boolean' },
      json: { type: 'boolean' },
      smp: { type: 'boolean' },
      cpus: { type: 'string' },
      static: { type: 'string' },
      reserved: { type: 'string' },
      dyn: { type: 'string' },
      memory: { type: 'string' },
      seed: { type: 'string' },
      lenient: { type: 'boolean' },
    });
    if (positionals.length !== 1) throw new UsageError('ftrace needs exactly one FILE (or - for standard input)');
    if ([values['to-jsonl'], values.json, values.smp].filter(Boolean).length > 1)
      throw new UsageError('--to-jsonl, --json and --smp are ways to use the trace: pick one');
    const file = positionals[0]!;
    const shape = {
      static_size: int('--static', values.static, 1, 1 << 24, DEFAULT_STATIC_SIZE),
      reserved_size: int('--reserved', values.reserved, 0, 1 << 24, PERCPU_MODULE_RESERVE),
      dyn_size: int('--dyn', values.dyn, 0, 1 << 24, PERCPU_DYNAMIC_RESERVE),
    };
    let bytes: Buffer;
    try {
      bytes = file === '-' ? await readStdinBytes() : readFileSync(file);
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
    }
    const name = file === '-' ? '<stdin>' : file;
    const text = traceText(bytes, printable(name), file === '-' ? 'trace.dat' : printable(file));
    const bar = progressBar(false);
    let doing = 'reading the trace';
    onInterrupt('ftrace', () => `stopped while ${doing}; nothing was compared`);
    const lines = lineCount(text);
    let parsed;
    try {
      parsed = await drive(parseFtraceSteps(text, { lenient: values.lenient === true }), (n) => {
        doing = `reading line ${n} of ${lines}`;
        bar('reading the trace', n, lines);
      });
      if (lines > STEP) bar('read the trace', lines, lines);
    } catch (e) {
      if (e instanceof FtraceError) {
        process.stderr.write(`percpu-sim ftrace: ${printable(name)}: ${e.message}\n`);
        return 2;
      }
      throw e;
    }
    for (const m of parsed.malformed)
      process.stderr.write(`percpu-sim ftrace: ${printable(name)}: skipped ${m.message}\n`);
    if (!parsed.events.length) {
      const counts = `${parsed.otherEvents} lines of other events, ${parsed.comments} comment lines, ${parsed.unreadable} unreadable or binary lines`;
      throw new UsageError(
        parsed.unreadable > parsed.otherEvents + parsed.comments
          ? `${name} is not a text trace (${counts}); give the text that tracefs or trace-cmd report prints`
          : `${name} holds no percpu events (${counts}); enable them with trace_event=percpu:*`,
      );
    }
    const cpus = int('--cpus', values.cpus, 1, 1024, Math.max(1, parsed.cpus));
    if (cpus < parsed.cpus) throw new UsageError(`--cpus ${cpus} is fewer than the trace's ${parsed.cpus} CPUs`);
    const ops = toReplayOps(parsed.events, { ...shape, cpus });

    if (values['to-jsonl']) {
      const out = new LineWriter();
      for (const l of ops.lines) out.line(l);
      out.flush();
      return 0;
    }
    if (values.smp) {
      if (values.static !== undefined || values.reserved !== undefined || values.dyn !== undefined)
        throw new UsageError(
          '--smp boots the standard machine; --static, --reserved and --dyn shape the replay without it',
        );
      const seed = int('--seed', values.seed, 0, 2 ** 32 - 1, 1);
      const memoryMiB = values.memory === undefined ? 256 : int('--memory', values.memory, 16, 4096, 256);
      const rerun = ftraceSmpCommand(file, { cpus, seed, memoryMiB });
      onInterrupt('ftrace', () => `seed ${seed}; rerun with: ${rerun}`);
      const r = await ftraceSmp(parsed.events, ops, { cpus, seed, memoryMiB, onProgress: bar });
      if ('refused' in r) {
        process.stdout.write(r.refused + '\n');
        return 1;
      }
      const head = `percpu-sim ftrace --smp: ${r.ops} traced operations on ${cpus} CPU worker threads, in trace order, every checker on`;
      // the run's own rerun line names a plan file that is gone by now: say how to rerun this instead
      const body = formatRunReport(r.report).replace(/\n[^\n]*replay with: [^\n]*$/, '');
      process.stdout.write(`${head}\n${body}\nrerun: ${rerun}\n`);
      return r.report.verdict === 'pass' ? 0 : 1;
    }
    try {
      const total = ops.lines.length;
      const c = await drive(
        compareFtraceSteps(
          parsed,
          ops,
          values.memory === undefined ? undefined : mib('--memory', values.memory, 16, 4096),
        ),
        (n) => {
          doing = `replaying operation ${n} of ${total} through 2.6.36`;
          bar('replaying through 2.6.36', n, total);
        },
      );
      if (total > STEP) bar('replayed through 2.6.36', total, total);
      process.stdout.write(
        (values.json ? JSON.stringify(c, null, 2) : formatFtraceComparison(c, printable(name))) + '\n',
      );
    } catch (e) {
      if (e instanceof BadInput) throw new UsageError(`the trace's operations do not replay: ${e.message}`);
      throw e;
    }
    return 0;
  },
};

/** The magic numbers of files that hold a trace but are not its text. */
const COMPRESSED: [string, number[], string][] = [
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz -dk'],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd], 'zstd -d'],
  ['bzip2', [0x42, 0x5a, 0x68], 'bunzip2 -k'],
];
/** trace-cmd's trace.dat starts with 0x17 0x08 0x44 and "tracing". */
const TRACE_DAT = Buffer.from([0x17, 0x08, 0x44, ...Buffer.from('tracing')]);

/**
 * The trace's text: a gzip file decompressed; a trace-cmd binary file or another compression
 * refused with the command that gives the text.
 */
function traceText(bytes: Buffer, name: string, path: string): string {
  const starts = (magic: readonly number[]) => magic.every((b, i) => bytes[i] === b);
  if (starts([0x1f, 0x8b])) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new UsageError(`${name} is gzip-compressed but does not decompress: ${(e as Error).message}`);
    }
  }
  if (starts([...TRACE_DAT]))
    throw new UsageError(
      `${name} is a trace-cmd binary file (trace.dat); give its text: trace-cmd report -i ${path} > trace.txt`,
    );
  for (const [kind, magic, how] of COMPRESSED)
    if (starts(magic)) throw new UsageError(`${name} is ${kind}-compressed; decompress it first (${how} ${path})`);
  return bytes.toString('utf8');
}

/** The lines of a text, as parseFtrace counts them (a last newline ends a line, it opens none). */
function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return text.length && !text.endsWith('\n') ? n + 1 : n;
}
