/**
 * bin/percpu-sim.mjs runs a compiled build of the command line (bin/compiled.mjs): built on
 * first use, used while no source changed, built again when one does, and never used for a
 * source that does not compile. Run on a copy of the checkout, so edits touch nobody else.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: the launcher is plain JavaScript, without types
import { manifestName } from '../../bin/compiled.mjs';

const root = mkdtempSync(join(tmpdir(), 'pcpu-launch-'));
for (const part of ['bin', 'src', 'package.json'])
  cpSync(part, join(root, part), { recursive: true, preserveTimestamps: true });
symlinkSync(realpathSync('node_modules'), join(root, 'node_modules'));
// dated back: a build made of files changed in the last second is used but not recorded
const past = new Date(Date.now() - 120_000);
for (const f of readdirSync(root, { recursive: true, encoding: 'utf8' }))
  if (!f.startsWith('node_modules')) utimesSync(join(root, f), past, past);
const cache = join(root, 'node_modules', '.cache', 'percpu-sim', 'cli');
const manifest = join(cache, manifestName(`${root}/`));
const builds = new Set<string>();

// a loader hook that names every module resolved, on stderr
const hook = join(root, 'hook.mjs');
const resolveHook =
  "export async function resolve(s, c, next) { const r = await next(s, c); process.stderr.write('LOADED ' + r.url + '\\n'); return r; }";
writeFileSync(
  hook,
  `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent(${JSON.stringify(resolveHook)}));\n`,
);

const cli = (env: Record<string, string> = {}, args = ['--version'], node: string[] = []) => {
  const r = spawnSync(process.execPath, [...node, join(root, 'bin', 'percpu-sim.mjs'), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  try {
    builds.add((JSON.parse(readFileSync(manifest, 'utf8')) as { dir: string }).dir);
  } catch {
    // no manifest yet
  }
  return r;
};
/** Rewrites the version function of the copy's src/cli/index.ts, dated `ago` ms back. */
const edit = (body: string, ago = 60_000) => {
  const file = join(root, 'src', 'cli', 'index.ts');
  const text = readFileSync(file, 'utf8').replace(/(function version\(\): string \{\n)[^]*?\n\}/, `$1${body}\n}`);
  writeFileSync(file, text);
  const then = new Date(Date.now() - ago);
  utimesSync(file, then, then);
};

afterAll(() => {
  // this copy's builds are its own (their import.meta.urls name it), and so is its manifest
  for (const dir of builds) rmSync(join(cache, dir), { recursive: true, force: true });
  rmSync(manifest, { force: true });
  rmSync(root, { recursive: true, force: true });
});

describe('the compiled command line', () => {
  it('is built on first use, reused while the sources stand, and rebuilt when one changes', () => {
    const first = cli();
    expect(first.stdout).toBe('percpu-sim 0.1.0\n');
    expect(first.status).toBe(0);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { dir: string; inputs: [string, number, number][] };
    expect(m.inputs.map(([f]) => f)).toEqual(expect.arrayContaining(['src/cli/index.ts', 'bin/compiled.mjs']));
    expect(statSync(join(cache, m.dir, 'index.mjs')).isFile()).toBe(true);
    const written = statSync(manifest).mtimeMs;

    // a fresh build is used as it is: the manifest is not written again
    expect(cli().stdout).toBe('percpu-sim 0.1.0\n');
    expect(statSync(manifest).mtimeMs).toBe(written);

    edit("  return 'edited';");
    expect(cli().stdout).toBe('percpu-sim edited\n');
    const again = JSON.parse(readFileSync(manifest, 'utf8')) as { dir: string };
    expect(again.dir).not.toBe(m.dir);
    // the same size, another time: the time alone tells
    edit("  return 'EDITED';", 30_000);
    expect(cli().stdout).toBe('percpu-sim EDITED\n');
  });

  it('runs the sources through tsx when a source does not compile, and when asked to', () => {
    edit("  return 'broken' +;");
    const r = cli();
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(join(root, 'src', 'cli', 'index.ts'));

    edit("  return 'through tsx';");
    expect(cli({ PERCPU_SIM_TSX: '1' }).stdout).toBe('percpu-sim through tsx\n');
  });

  it('starts a replay without loading zod or, from a recorded build, node:crypto', () => {
    const trace = join(root, 't.jsonl');
    writeFileSync(
      trace,
      '{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}\n{"op":"alloc","id":"a","size":8,"align":8}\n',
    );
    const loaded = (args: string[]): string[] => {
      const r = cli({}, args, ['--import', hook]);
      expect(r.status, r.stderr).toBe(0);
      return r.stderr
        .split('\n')
        .filter((l) => l.startsWith('LOADED '))
        .map((l) => l.slice(7));
    };
    expect(cli().stdout).toBe('percpu-sim through tsx\n'); // compiled now, and recorded
    const mods = loaded(['replay', trace]);
    expect(mods.some((u) => u.includes('/percpu-sim/cli/'))).toBe(true); // the compiled build ran
    expect(mods.filter((u) => /[\\/]zod[\\/]/.test(u) || /^(node:)?crypto$/.test(u))).toEqual([]);
    // run reads its flags from a schema: there the hook does see zod
    expect(loaded(['run', '--help']).some((u) => /[\\/]zod[\\/]/.test(u))).toBe(true);
  });

  it('names one manifest per checkout, the same each time', () => {
    const roots = [`${root}/`, `${realpathSync('.')}/`, '/a/', '/b/', '/srv/x/', '/srv/y/'];
    for (let k = 0; k < 200; k++) roots.push(`/tmp/w${k}/percpu-sim/`);
    expect(new Set(roots.map((r) => manifestName(r) as string)).size).toBe(roots.length);
    expect(manifestName('/srv/x/')).toBe(manifestName('/srv/x/'));
    expect(manifestName('/srv/x/')).toMatch(/^manifest-[0-9a-f]+\.json$/);
  });
});
