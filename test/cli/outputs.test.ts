/**
 * Reports that cannot be written: standard output on a full disk, an output file that fails
 * part way, and two flags naming one file. A lost report is never a success, a found failure
 * keeps its exit status, and no truncated file is left behind. The command-line cases run in
 * child processes (see test/check/stress-cli.test.ts on why spawning tests live apart).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Outputs } from '../../src/cli/outputs.ts';

const cli = (args: string[], stdout: 'pipe' | number = 'pipe') =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    stdio: ['ignore', stdout, 'pipe'],
  });

let dir = '';
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'percpu-sim-outputs-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('standard output that cannot be written', () => {
  const full = (): number => openSync('/dev/full', 'w');

  it('is an error that says so: a clean run exits 2, a failing run keeps 1', () => {
    const clean = cli(['run', 'counter', '--cpus', '2', '--arg', 'adds=10', '--seed', '1'], full());
    expect(clean.status).toBe(2);
    expect(clean.stderr).toContain(
      'percpu-sim run: could not write to standard output (ENOSPC); the report is lost or cut short\n',
    );
    const json = cli(['stress', '--ops', '20', '--json'], full());
    expect(json.status).toBe(2);
    expect(json.stderr).toContain('percpu-sim stress: could not write to standard output (ENOSPC)');
    const failing = cli(['run', 'isolation-bug', '--seed', '1'], full());
    expect(failing.status).toBe(1);
    expect(failing.stderr).toContain('percpu-sim run: could not write to standard output (ENOSPC)');
    const help = cli(['--help'], full());
    expect(help.status).toBe(2);
    expect(help.stderr).toBe(
      'percpu-sim: could not write to standard output (ENOSPC); the report is lost or cut short\n',
    );
  });
});

describe('output files', () => {
  it('a failed --html keeps the found failure (exit 1) and says so on stderr', () => {
    const r = cli(['run', 'isolation-bug', '--seed', '1', '--html', '/dev/full']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('verdict: FAIL');
    expect(r.stderr).toContain(
      'percpu-sim run: --html /dev/full: could not write it (ENOSPC); the report above is complete\n',
    );
  });

  it('a write that fails part way leaves the old file whole, and no temporary file', () => {
    const path = join(dir, 'kept.html');
    writeFileSync(path, 'the previous report\n');
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const out = new Outputs('run');
      out.write('--html', out.claim('--html', path), (p) => {
        writeFileSync(p, '<html>half of a rep');
        throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      });
      expect(out.finish(0)).toBe(2);
      expect(err).toHaveBeenCalledWith(
        `percpu-sim run: --html ${path}: could not write it (ENOSPC); the report above is complete\n`,
      );
    } finally {
      err.mockRestore();
    }
    expect(readFileSync(path, 'utf8')).toBe('the previous report\n');
    expect(readdirSync(dir).filter((f) => f.includes('kept'))).toEqual(['kept.html']);
    const fresh = join(dir, 'fresh.json');
    const out = new Outputs('run');
    out.write('--save', out.claim('--save', fresh), () => {
      throw new Error('refused');
    });
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('fresh'))).toEqual([]);
    out.write('--save', fresh, (p) => writeFileSync(p, '{}\n'));
    expect(readFileSync(fresh, 'utf8')).toBe('{}\n');
  });

  it('two outputs on one file are refused before the run; a device takes both', () => {
    const f = join(dir, 'same.out');
    for (const args of [
      ['run', 'counter', '--cpus', '2', '--html', f, '--trace', f],
      ['stress', '--ops', '10', '--save', f, '--html', join(dir, '.', 'same.out')],
      ['run', 'counter', '--cpus', '2', '--svg', f, '--save', f],
    ]) {
      const r = cli(args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(
        /^percpu-sim \w+: --\w+ \S+same.out: --\w+ writes that file too; give each output a file of its own\n/,
      );
      expect(r.stdout).toBe('');
    }
    expect(existsSync(f)).toBe(false);
    const dev = cli([
      'run',
      'counter',
      '--cpus',
      '2',
      '--arg',
      'adds=10',
      '--html',
      '/dev/null',
      '--trace',
      '/dev/null',
    ]);
    expect(dev.status).toBe(0);
  });
});
