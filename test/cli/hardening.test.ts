/**
 * Bad input and faults, as a demanding user brings them: every one is a clear line and exit
 * status 2 (or the run's own status), nothing hangs, no report is lost, no stack trace is
 * printed. One test per finding of the hardening review, numbered as there.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = (args: string[], input?: string) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    ...(input !== undefined ? { input } : {}),
  });
const oneLine = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('Run "percpu-sim')).length === 1;
const noStack = (s: string) => !/^\s+at .+:\d+:\d+\)?$/m.test(s);

let dir = '';
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const BOOT = '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}';

beforeAll(() => {
  // outside this package: no package.json says "type": "module" here
  dir = mkdtempSync(join(tmpdir(), 'percpu-sim-hardening-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hardening', () => {
  it('1. an illegal size from a workload is the kernel WARN and NULL, and the process ends', () => {
    const r = cli(['run', 'lifecycle', '--arg', 'big=-1', '--seed', '1', '--timeout', '10']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('WARNING: illegal size (-1) or align (8) for percpu allocation');
    expect(noStack(r.stderr)).toBe(true);
  });

  it('2. an output path that cannot be written is bad usage before the run, naming it', () => {
    for (const args of [
      ['run', 'counter', '--cpus', '2', '--arg', 'adds=10', '--save', '/proc/x.json'],
      ['stress', '--ops', '10', '--save', dir],
      ['replay', '-', '--svg', '/proc/x.svg'],
    ]) {
      const r = cli(args, `${BOOT}\n`);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(
        /^percpu-sim \w+: --(save|svg) \S+: (cannot write there \(\w+\)|that is a directory; give a file name)\n/,
      );
      expect(r.stdout).toBe('');
    }
  });

  it('3. a workload file from any folder loads, and a broken one is one line and exit 2', () => {
    const good = file(
      'mine.ts',
      "import type { Workload } from 'percpu-sim';\nconst w: Workload<number> = { name: 'mine', description: 'd', defaults: {}, async run(cpu) { const p = await cpu.alloc_percpu(4, 4); cpu.this_cpu_inc(p); await cpu.free_percpu(p); return 1; } };\nexport default w;\n",
    );
    expect(cli(['run', good, '--cpus', '2']).status).toBe(0);
    // arguments are optional: a workload without defaults takes none
    const bare = file('bare.mjs', "export default { name: 'bare', async run() { return 1; } };\n");
    expect(cli(['run', bare, '--cpus', '2']).status).toBe(0);
    const unknown = cli(['run', bare, '--cpus', '2', '--arg', 'n=1']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('--arg n: the workload "bare" has no such argument; its arguments are none');
    const cases: [string, string][] = [
      [file('nodefault.mjs', 'export const x = 1;\n'), 'has no default export of a workload'],
      [file('syntax.ts', 'export default {\n  run() { return 1 +; }\n};\n'), '(line 2): SyntaxError: Unexpected ";"'],
      [file('throws.js', 'throw new Error("boom at load");\n'), 'Error: boom at load'],
      [
        file('noname.mjs', 'export default { async run() { return 1; } };\n'),
        "noname.mjs: the workload's name must be a non-empty string (see docs/workloads.md)",
      ],
      [
        file('baddefault.mjs', "export default { name: 'b', defaults: { n: null }, async run() { return 1; } };\n"),
        "baddefault.mjs: the workload's default n must be a number, a string or a boolean, not null",
      ],
    ];
    for (const [f, msg] of cases) {
      const r = cli(['run', f, '--cpus', '2']);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(msg);
      expect(oneLine(r.stderr)).toBe(true);
    }
    const internal = cli(['run', '../src/cli']);
    expect(internal.status).toBe(2);
    expect(internal.stderr).toContain('not an example');
  });

  it('4. a verify() that never returns is stopped like any phase', () => {
    const loop = file(
      'loopv.mjs',
      "export default { name: 'loopv', description: 'd', defaults: {}, async run() { return 1; }, verify() { for (;;) {} } };\n",
    );
    const t = Date.now();
    const r = cli(['run', loop, '--cpus', '2', '--timeout', '2']);
    // a time-out, like any phase that stops making progress
    expect(r.status).toBe(3);
    expect(r.stdout).toContain(
      '== verdict: TIMEOUT (1 violation) ==\n  workload/timeout: verify() did not finish within 2 s\n',
    );
    expect(Date.now() - t).toBeLessThan(30_000);
  });

  it('5. replay-run checks the file against its schema and names the field', () => {
    const saved = join(dir, 'saved.json');
    expect(cli(['stress', '--ops', '50', '--mutant', 'populate-no-zero', '--save', saved]).status).toBe(1);
    const good = JSON.parse(readFileSync(saved, 'utf8')) as {
      config: Record<string, unknown> & { args: Record<string, unknown> };
    };
    const variants: [(s: typeof good) => void, string][] = [
      [(s) => delete (s as Partial<typeof good>).config, 'config: Required'],
      [(s) => (s.config.args.ops = 1e12), 'config.args.ops: Number must be less than or equal to 10000000'],
      [(s) => (s.config.backend = 'zz'), 'config.backend: Invalid enum value'],
      [(s) => (s.config.mutant = 'nope'), 'config.mutant: Invalid enum value'],
      [(s) => (s.config.seed = 'seven'), 'config.seed: Expected number, received string'],
    ];
    for (const [mutate, msg] of variants) {
      const s = JSON.parse(JSON.stringify(good)) as typeof good;
      mutate(s);
      const r = cli(['replay-run', file('bad-saved.json', JSON.stringify(s))]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(msg);
    }
    expect(cli(['replay-run', saved]).stdout).toContain('reproduced: the replay ends exactly as the saved run did');
  });

  it('6. a CPU that stops making progress is a time-out (exit 3); one that works is not', () => {
    const hang = file(
      'hang.mjs',
      "export default { name: 'hang', description: 'd', defaults: {}, async run(cpu) { if (cpu.cpu === 1) for (;;) {} return 1; } };\n",
    );
    const r = cli(['run', hang, '--cpus', '2', '--timeout', '2']);
    expect(r.status).toBe(3);
    expect(r.stdout).toContain('== verdict: TIMEOUT (1 violation) ==');
    expect(r.stdout).toContain('cpu 1: timed out: made no progress for 2 s');
    // two million this_cpu_inc take longer than a second, but they are progress
    expect(cli(['run', 'counter', '--cpus', '2', '--timeout', '1']).status).toBe(0);
  });

  it('7. a reader that goes away ends the program quietly', () => {
    const lines = [BOOT, ...Array.from({ length: 20000 }, (_, i) => `{"op":"alloc","id":"a${i}","size":4,"align":4}`)];
    const trace = file('big.jsonl', lines.join('\n') + '\n');
    const r = spawnSync('bash', ['-c', `node bin/percpu-sim.mjs replay ${trace} | head -1; exit \${PIPESTATUS[0]}`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      '{"op":"boot","unit_size":65536,"static_size":20000,"reserved_size":8192,"dyn_size":20960}\n',
    );
    expect(r.stderr).toBe('');
  });

  it('8. control bytes from the input are escaped in messages', () => {
    // in a file's name and in the trace itself
    const crafted = file('trace\x1b[2J\x07.jsonl', `${BOOT}\n{"op":"free","id":"\\u001b[2J"}\n`);
    for (const args of [
      ['replay', crafted],
      ['replay', `${crafted}.missing`],
      ['run', '\x1b[31mred\x07'],
    ]) {
      const r = cli(args);
      expect(r.status).toBe(2);
      expect(r.stderr).not.toMatch(/[\x07\x1b]/);
      expect(r.stderr).toMatch(/\\x1b|\\u001b/);
    }
  });

  it('9. --arg keys and values are checked against the workload', () => {
    const unknown = cli(['run', 'counter', '--arg', 'add=5']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain(
      '--arg add: the workload "counter" has no such argument; its arguments are adds (default 2000000)',
    );
    const typed = cli(['run', 'counter', '--arg', 'adds=abc']);
    expect(typed.status).toBe(2);
    expect(typed.stderr).toContain('--arg adds must be a number like its default 2000000, got "abc"');
  });

  it('10. a leak is reported like kmemleak, and --fail-on-leak makes it a failure', () => {
    const leaky = file(
      'leaky.mjs',
      "export default { name: 'leaky', description: 'd', defaults: {}, async run(cpu) { await cpu.alloc_percpu(48, 8); return 1; } };\n",
    );
    const r = cli(['run', leaky, '--cpus', '2']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /unreferenced percpu area 0x[0-9a-f]+ \(48 bytes at chunk 0 offset \d+\), allocated by cpu \d at tick \d+/,
    );
    const strict = cli(['run', leaky, '--cpus', '2', '--fail-on-leak']);
    expect(strict.status).toBe(1);
    expect(strict.stdout).toContain('leak: unreferenced percpu area');
    // a CPU that stopped early leaves its areas: one line that points at its failure, not a list
    const stops = file(
      'stops.mjs',
      "export default { name: 'stops', async run(cpu) { for (let i = 0; i < 5; i++) await cpu.alloc_percpu(48, 8); if (cpu.cpu === 1) throw new Error('gave up'); return 1; } };\n",
    );
    const stopped = cli(['run', stops, '--cpus', '2', '--fail-on-leak']);
    expect(stopped.status).toBe(1);
    const leaks = stopped.stdout.split('\n').filter((l) => l.includes('areas/leak'));
    expect(leaks).toHaveLength(1);
    expect(leaks[0]).toMatch(
      /areas\/leak: leak: 10 area\(s\) left by a run that stopped early \(see the failure above\); the first: unreferenced percpu area 0x[0-9a-f]+ \(48 bytes at chunk 0 offset \d+\), allocated by cpu \d at tick \d+$/,
    );
  });

  it('11. Ctrl-C prints the seed, what finished and the rerun command, then exits 130', async () => {
    const child = spawn(process.execPath, ['bin/percpu-sim.mjs', 'stress', '--duration', '60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise((r) => setTimeout(r, 4000));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(err).toMatch(
      /percpu-sim stress: interrupted \(SIGINT\); \d+ run\(s\) finished, 0 with violations; seeds? [\d, ]+ (was|were) running; rerun it with: percpu-sim stress --seed \d+ --cpus 3 --nodes [1-4] --backend (vm|km) /,
    );
  }, 30_000);

  it('12. messages name the flag, the range and the cause', () => {
    const cases: [string[], string, string?][] = [
      [['run', '--cpus', '-1'], '--cpus must be between 1 and 1024, got -1'],
      [
        ['stress', '--seed', '18446744073709551616'],
        '--seed must be between 0 and 4294967295, got 18446744073709551616',
      ],
      [
        ['boot', '--atom', '8192000'],
        '--atom must be a power of two (the allocation atom: 4096 for pages, 2097152 for large pages), got 8192000',
      ],
      [
        ['boot', '--cpus', '1024', '--memory', '16'],
        'boot memory ran out (1024 CPUs, 16 MiB of memory over 1 node(s)); give the machine more memory with --memory',
      ],
      [
        ['replay', '-'],
        'line 2: "size" must be an integer in [0, 9007199254740991], got a number too large to hold',
        `${BOOT}\n{"op":"alloc","id":"a","size":1e400,"align":8}\n`,
      ],
    ];
    for (const [args, msg, input] of cases) {
      const r = cli(args, input);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(msg);
    }
    const fn = cli([
      'run',
      file(
        'fn.mjs',
        "export default { name: 'fn', description: 'd', defaults: {}, async run() { return () => 1; } };\n",
      ),
      '--cpus',
      '2',
    ]);
    expect(fn.stdout).toContain('run() returned a function; return plain data');
    const str = cli([
      'run',
      file(
        'strv.mjs',
        "export default { name: 'strv', description: 'd', defaults: {}, async run() { return 1; }, verify() { return 'oops'; } };\n",
      ),
      '--cpus',
      '2',
    ]);
    expect(str.stdout).toContain('verify() must return an array of strings (one per failure), got string');
  });

  it('13. combinations that cannot be are refused', () => {
    const cases: [string[], string, string?][] = [
      [['replay', '-'], 'the trace is empty: it must start with a "boot" line', ''],
      [['boot', '--numa'], '--numa groups CPUs by node: give --nodes 2 or more'],
      [['boot', '--nodes', '4', '--cpus', '2'], '--nodes 4 is more than --cpus 2: every node needs a CPU'],
      [['run', 'counter', '--nodes', '4', '--cpus', '2'], '--nodes 4 is more than --cpus 2'],
      [['stress', '--workers', '--duration', '20'], '--workers runs one seed on real threads'],
      [['stress', '--workers', '--explore'], '--explore and --schedule use the deterministic engine'],
      [['help', 'bogus'], 'no command "bogus"'],
    ];
    for (const [args, msg, input] of cases) {
      const r = cli(args, input);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(msg);
    }
    const none = cli([]);
    expect(none.status).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('Usage: percpu-sim <command>');
  });

  it('14. an alignment that is not a power of two follows 2.6.36 (see the replay tests), and 0 is illegal', () => {
    const r = cli(
      ['replay', '-'],
      `${BOOT}\n{"op":"alloc","id":"a","size":8,"align":6}\n{"op":"alloc","id":"b","size":8,"align":0}\n`,
    );
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').slice(1, 3)).toEqual([
      '{"op":"alloc","id":"a","chunk":0,"offset":28192}',
      '{"op":"alloc","id":"b","chunk":null,"error":"illegal size (8) or align (0) for percpu allocation"}',
    ]);
  });
});

describe('fuzz', () => {
  it('random bad flags and broken saved runs: exit 2, one line, no stack, no hang', async () => {
    const fc = await import('fast-check');
    const { main } = await import('../../src/cli/index.ts');
    mkdirSync(join(dir, 'fuzz'), { recursive: true });
    const bad = ['-1', '0', 'x', '1e400', '', '99999999999999999999', 'NaN', '\u001b[31m', '--', '3.5'];
    const flagsOf: Record<string, string[]> = {
      run: ['--cpus', '--nodes', '--backend', '--memory', '--seed', '--policy', '--timeout', '--arg', '--mutant'],
      stress: [
        '--cpus',
        '--nodes',
        '--backend',
        '--memory',
        '--seed',
        '--policy',
        '--ops',
        '--sizes',
        '--max-align-shift',
        '--granularity',
        '--preemptions',
        '--scenario',
        '--mutant',
        '--fail-rate',
      ],
      replay: ['--memory'],
      ftrace: ['--cpus', '--static', '--dyn', '--memory', '--seed'],
      boot: ['--cpus', '--nodes', '--atom', '--static', '--memory', '--backend', '--fc'],
      'replay-run': ['--json'],
      mutants: ['--bogus'],
    };
    const capture = async (argv: string[]): Promise<{ code: number; err: string }> => {
      let err = '';
      const write = process.stderr.write.bind(process.stderr);
      const out = process.stdout.write.bind(process.stdout);
      process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      try {
        const code = await Promise.race([
          main(argv),
          new Promise<number>((_, rej) => setTimeout(() => rej(new Error(`hung: ${argv.join(' ')}`)), 20_000)),
        ]);
        return { code, err };
      } finally {
        process.stderr.write = write;
        process.stdout.write = out;
      }
    };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(flagsOf)),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...bad)), { minLength: 1, maxLength: 3 }),
        async (cmd, picks) => {
          const flags = flagsOf[cmd]!;
          const argv = [cmd, ...picks.flatMap(([i, v]) => [flags[i % flags.length]!, v])];
          if (cmd === 'replay' || cmd === 'ftrace' || cmd === 'replay-run') argv.push(join(dir, 'fuzz', 'missing'));
          const { code, err } = await capture(argv);
          expect(code).toBe(2);
          expect(noStack(err)).toBe(true);
          expect(err.startsWith('percpu-sim')).toBe(true);
          expect(err.split('\n').filter((l) => l && !l.startsWith('Run "percpu-sim')).length).toBe(1);
        },
      ),
      { seed: 20261126, numRuns: 120 },
    );
    const saved = {
      format: 'percpu-sim-stress',
      version: 2,
      config: {},
      scenario: null,
      schedule: null,
      verdict: 'clean',
      violations: [],
    };
    await fc.assert(
      fc.asyncProperty(
        fc.anything(),
        fc.constantFrom('format', 'version', 'config', 'schedule', 'verdict', 'violations'),
        async (junk, key) => {
          const f = join(dir, 'fuzz', 'saved.json');
          writeFileSync(f, JSON.stringify({ ...saved, [key]: junk }));
          const { code, err } = await capture(['replay-run', f]);
          expect(code).toBe(2);
          expect(noStack(err)).toBe(true);
        },
      ),
      { seed: 20261126, numRuns: 80 },
    );
  }, 120_000);
});
