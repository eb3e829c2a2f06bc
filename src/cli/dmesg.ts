/** `percpu-sim dmesg`: a real boot log's percpu lines beside 2.6.36 on the same machine. */
import { readFileSync } from 'node:fs';
import { compareDmesg } from '../harness/dmesg.ts';
import { dmesgJson, formatDmesgComparison } from '../report/dmesg-report.ts';
import { DmesgError, parseDmesg } from '../trace/dmesg.ts';
import { type Command, UsageError, escapeControl, parse, readStdin } from './common.ts';

export const dmesg: Command = {
  summary: "read a real boot log's percpu lines, boot 2.6.36 on its machine and explain every difference",
  help: `Usage: percpu-sim dmesg FILE [--json]

Reads a kernel boot log (dmesg, a serial console, syslog; FILE or - for standard input),
with or without timestamps and log levels. From its percpu lines (the setup_percpu: line of
x86, "PERCPU: Embedded ..." or "percpu: ..." of later kernels, the page first chunk's
"4K pages/cpu" line, the max_distance warning and the fallback, the pcpu-alloc: dump in every
width) it infers the machine: possible CPUs, which CPU is on which node (the group of the
dump), static, reserved and dynamic sizes, the atom, the page size and how the first chunk
was built. It boots 2.6.36 on that machine (the equivalent percpu-sim boot command is
printed) and prints each line of the log above the line 2.6.36 prints, with every
difference explained: the machine's own (an address, its vmalloc space, its page size), the
copy's (a lost trailing space), or a later kernel's (the "percpu:" prefix, hashed pointers,
the 32 KiB minimum unit of 2.6.37). Other lines are ignored and counted.

Options:
  --json      the same as data
  -h, --help  this text

Exit status: 0 every difference explained, 1 a difference no rule explains, 2 a log with no
percpu lines or one that cannot be read.

Example:
  percpu-sim dmesg test/fixtures/real-dmesg/boot05-2.6.32el6-x86_64-32cpu-2node.log
  dmesg | percpu-sim dmesg -`,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError('dmesg needs exactly one FILE (or - for standard input)');
    const file = positionals[0]!;
    let text: string;
    try {
      text = file === '-' ? await readStdin() : readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
    }
    const parsed = parseDmesg(text);
    if (!parsed.lines.length)
      throw new UsageError(
        `${escapeControl(file)} holds no percpu boot lines (${parsed.ignored} other line(s), ${parsed.otherPercpu.length} percpu line(s) of other kinds); give a log with the "PERCPU:"/"percpu:" first chunk line or the pcpu-alloc: lines of a boot`,
      );
    let c;
    try {
      c = compareDmesg(parsed);
    } catch (e) {
      if (e instanceof DmesgError) throw new UsageError(`${escapeControl(file)}: ${e.message}`);
      throw e;
    }
    process.stdout.write(
      (values.json ? JSON.stringify(dmesgJson(c, file), null, 2) : formatDmesgComparison(c, file)) + '\n',
    );
    return c.unexplained ? 1 : 0;
  },
};
