/** `percpu-sim replay`: a JSON Lines trace through the allocator, one result line per operation. */
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { BadInput, replaySteps } from '../trace/replay.ts';
import { ByteLines, replayBytes } from '../trace/replay-bytes.ts';
import { type ReadBytes, UnreadableTrace, lineText, traceText, withoutBom } from '../trace/trace-text.ts';
import type { Percpu } from '../kernel/percpu.ts';
import {
  type Command,
  LineWriter,
  UsageError,
  drive,
  escapeControl,
  mib,
  onInterrupt,
  parse,
  readStdinBytes,
  stdoutBacklog,
} from './common.ts';
import { Outputs } from './outputs.ts';
import { HTML_OPTION } from './visual-flags.ts';

export const replay: Command = {
  summary: 'replay a JSON Lines trace of allocator operations, one JSON result line per operation',
  help: `Usage: percpu-sim replay FILE [--memory MIB] [--svg OUT] [--html OUT]
       percpu-sim replay --reference FILE [--json]

Replays a trace through the kernel's allocator and prints one JSON line per operation to
standard output. FILE is a path, or - for standard input. Input lines:

  {"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}
  {"op":"alloc","id":"a1","size":16,"align":8}
  {"op":"alloc","id":"m1","size":100,"align":8,"reserved":true}
  {"op":"free","id":"a1"}
  {"op":"slab_online"}
  {"op":"init_late"}

"boot" may also carry cpus (default 4), nodes (at most cpus), atom_size and backend ("vm"
or "km"). A key an operation does not take is bad input; keys may come in any order, with
any JSON whitespace. An id is any string; it may be allocated again once freed, or once its
allocation failed, and freeing a failed allocation is allowed. The trace is UTF-8; a byte
order mark at its start is skipped. A plain replay reads the trace as it goes, in constant
memory; --reference and --html hold all of it.
Output lines name the chunk ("reserved", 0 for the first chunk, then 1, 2, ... in order of
creation) and the offset inside the unit, or "chunk":null and the kernel's reason.

Options:
  --reference    replay the trace through the allocator and through the 2.6.36 reference
                 model (src/model, which shares no code with the allocator), and print every
                 operation where they part ways, then the totals of each (operations,
                 allocations, failures, chunks used, bytes live at the end); exit 1 when
                 they differ. For a change made on purpose, this is its list of behaviour
                 changes. --json prints the same as data
  --memory MIB   physical memory of the replay machine, 16 to 65536 (default 65536: only
                 the pages in use cost anything, since the machine keeps no bytes)
  --svg OUT      also draw the final state of every chunk (areas and populated pages) as SVG
  --html OUT     also write a self-contained HTML report: the boot layout, every chunk's map
                 over the trace under a slider, counters, percpu_stats; a bad line is shown
                 with the lines before it
  -h, --help     this text

A bad line stops the replay with exit status 2 and a message naming the line; the lines
before it have been printed. The format is specified in docs/replay-format.md.

Example:
  printf '%s\\n' '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}' \\
                 '{"op":"alloc","id":"a","size":16,"align":8}' | percpu-sim replay -`,
  async run(argv) {
    try {
      return await replayMain(argv);
    } catch (e) {
      if (e instanceof UnreadableTrace) throw new UsageError(e.message);
      throw e;
    }
  },
};

async function replayMain(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    memory: { type: 'string' },
    svg: { type: 'string' },
    reference: { type: 'boolean' },
    json: { type: 'boolean' },
    ...HTML_OPTION,
  });
  if (positionals.length !== 1) throw new UsageError('replay needs exactly one FILE (or - for standard input)');
  const file = positionals[0]!;
  const outputs = new Outputs('replay');
  const svg = outputs.claim('--svg', values.svg);
  const memoryBytes = values.memory === undefined ? undefined : mib('--memory', values.memory, 16, 65536);
  if (!values.reference && !values.json && values.html === undefined) return plainMain(file, memoryBytes, svg, outputs);
  // the reports and the model are loaded only by the runs that use them
  const { Visuals } = await import('./visuals.ts');
  const { replayCommand } = await import('../files/rerun.ts');
  const visuals = new Visuals(outputs, values);
  const recorder = visuals.fresh();
  let bytes: Buffer;
  try {
    bytes = file === '-' ? await readStdinBytes() : readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const text = traceText(bytes);
  if (values.reference) return referenceMain(text, file, memoryBytes, values.json === true);
  if (values.json) throw new UsageError('--json goes with --reference (replay prints JSON lines already)');
  const out = new LineWriter();
  const shown = file === '-' ? '<stdin>' : file;
  // a trace read from standard input is gone once read: say so rather than print a command that waits for input
  const rerun =
    file === '-'
      ? { replay: null, note: ['the trace came on standard input: save it to a file to replay it again'] }
      : { replay: replayCommand(file), note: [] };
  // a trace has no CPUs: its operations reach the allocator one after another
  const operations = (ops: number, allocs: number, failed: number, frees: number) => ({
    title: 'Operations',
    columns: ['operations', 'allocations', 'failed', 'frees'],
    rows: [[ops, allocs, failed, frees]],
  });
  const page = (ok: boolean, notes: string[]) => ({
    title: `percpu-sim replay ${shown}`,
    verdict: {
      label: ok ? 'REPLAYED' : 'STOPPED',
      ok,
      seed: null,
      replay: rerun.replay,
      notes: [...notes, ...rerun.note],
    },
  });
  let replayed = 0;
  try {
    const onResourceLimit = (m: string): void => void process.stderr.write(`percpu-sim replay: warning: ${m}\n`);
    const watch = recorder
      ? {
          onBoot: (pc: Percpu) => recorder.attach(pc),
          onStep: (n: number, input: string, output: string) => {
            replayed++;
            recorder.step(n, `line ${n}: ${input} -> ${output}`);
          },
        }
      : {};
    let reached = 0;
    onInterrupt(
      'replay',
      () => `stopped at line ${reached} of ${shown}; the results of the lines before it are written`,
      {
        flush: () => out.flush(),
      },
    );
    const summary = await drive(
      replaySteps(text, (l) => out.line(l), {
        ...(memoryBytes === undefined ? {} : { memoryBytes }),
        onResourceLimit,
        ...watch,
      }),
      (n) => void (reached = n),
    );
    if (summary.pc) await writeSvg(outputs, svg, summary.pc, file);
    visuals.write({
      ...page(true, [
        `${summary.ops} operations: ${summary.allocs} allocations (${summary.failed} failed), ${summary.frees} frees`,
      ]),
      cpuTable: operations(summary.ops, summary.allocs, summary.failed, summary.frees),
    });
  } catch (e) {
    out.flush();
    if (e instanceof BadInput) {
      recorder?.violation(e.line, e.message);
      const lines = text.split('\n');
      visuals.write({
        ...page(false, ['the replay stopped at a bad line; the lines before it were replayed']),
        position: 'line',
        cpuTable: {
          title: 'Operations',
          columns: ['operations replayed before the bad line'],
          rows: [[replayed]],
        },
        around: () =>
          lines.slice(Math.max(0, e.line - 12), e.line).map((l, i) => `${Math.max(0, e.line - 12) + i + 1}: ${l}`),
      });
      outputs.finish(2);
      process.stderr.write(
        `percpu-sim replay: ${file === '-' ? '<stdin>' : escapeControl(file)}: ${escapeControl(e.message)}\n`,
      );
      return 2;
    }
    throw e;
  }
  out.flush();
  return outputs.finish(0);
}

/**
 * replay with no report but the lines (and --svg): the trace is read in blocks as it is
 * replayed, so memory does not grow with its length (replay-bytes.ts).
 */
async function plainMain(
  file: string,
  memoryBytes: number | undefined,
  svg: string | undefined,
  outputs: Outputs,
): Promise<number> {
  let read: ReadBytes;
  let fd = -1;
  try {
    if (file === '-') {
      const all = await readStdinBytes();
      let at = 0;
      read = (into, pos) => {
        const n = all.copy(into, pos, at);
        at += n;
        return n;
      };
    } else {
      fd = openSync(file, 'r');
      read = (into, pos) => {
        try {
          return readSync(fd, into, pos, into.length - pos, null);
        } catch (e) {
          // a directory opens, and fails at its first read
          throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
        }
      };
    }
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const shown = file === '-' ? '<stdin>' : file;
  // a file takes each block at once (fs.writeSync); a pipe may queue it, and then keeps it
  const out = new ByteLines((b) => {
    process.stdout.write(b);
    return process.stdout.writableLength === 0;
  });
  let reached = 0;
  onInterrupt(
    'replay',
    () => `stopped at line ${reached} of ${shown}; the results of the lines before it are written`,
    {
      flush: () => out.flush(),
    },
  );
  try {
    const onResourceLimit = (m: string): void => void process.stderr.write(`percpu-sim replay: warning: ${m}\n`);
    const summary = await drive(
      replayBytes(withoutBom(read), out, lineText, {
        ...(memoryBytes === undefined ? {} : { memoryBytes }),
        onResourceLimit,
      }),
      (n) => void (reached = n),
      // a pipe's reader slower than the replay: wait for it rather than queue the whole output
      stdoutBacklog,
    );
    if (summary.pc) await writeSvg(outputs, svg, summary.pc, file);
  } catch (e) {
    if (e instanceof BadInput) {
      outputs.finish(2);
      process.stderr.write(
        `percpu-sim replay: ${file === '-' ? '<stdin>' : escapeControl(file)}: ${escapeControl(e.message)}\n`,
      );
      return 2;
    }
    throw e;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  return outputs.finish(0);
}

/** --svg: the final state of every chunk. */
async function writeSvg(outputs: Outputs, svg: string | undefined, pc: Percpu, file: string): Promise<void> {
  if (svg === undefined) return;
  const { allocatorSvg } = await import('../report/svg.ts');
  outputs.write('--svg', svg, (p) => writeFileSync(p, allocatorSvg(pc, `percpu-sim replay ${file}`)));
}

/** replay --reference: the allocator and the model side by side, the model on a thread of its own. */
async function referenceMain(
  text: string,
  file: string,
  memoryBytes: number | undefined,
  json: boolean,
): Promise<number> {
  const { compareWithReferenceOnThreads } = await import('../smp/model-thread.ts');
  const c = await compareWithReferenceOnThreads(text, memoryBytes === undefined ? {} : { memoryBytes });
  if (json) process.stdout.write(JSON.stringify(c, null, 2) + '\n');
  else {
    const out: string[] = [];
    for (const d of c.differences.slice(0, 200))
      out.push(`line ${d.line}: ${d.input}`, `  2.6.36:         ${d.reference}`, `  this allocator: ${d.allocator}`);
    if (c.differences.length > 200) out.push(`... and ${c.differences.length - 200} more`);
    const t = (x: typeof c.allocator) =>
      `${x.operations} operations, ${x.allocations} allocations, ${x.failures} failures, ${x.chunks} chunks used, ${x.live} bytes live at the end`;
    out.push(
      `${c.differences.length ? `${c.differences.length} operation(s) differ` : 'no operation differs'} from 2.6.36 in ${file === '-' ? '<stdin>' : escapeControl(file)}`,
      `  2.6.36:         ${t(c.reference)}${c.stopped.reference ? `; stopped at ${c.stopped.reference}` : ''}`,
      `  this allocator: ${t(c.allocator)}${c.stopped.allocator ? `; stopped at ${c.stopped.allocator}` : ''}`,
    );
    process.stdout.write(out.join('\n') + '\n');
  }
  return c.differences.length || c.stopped.allocator !== c.stopped.reference ? 1 : 0;
}
