/**
 * The command line compiled: src/cli/index.ts built by esbuild into
 * node_modules/.cache/percpu-sim/cli/, one module per command so that a command loads only
 * what it uses. A build is used while every file it was made from (and this one) keeps the
 * size and modification time it had: one stat per file, about a millisecond. Otherwise it is
 * made again, in about a quarter of a second.
 *
 * Each module's import.meta.url is pinned to its source file, so code that finds files beside
 * it (examples, worker entries, package.json) behaves exactly as it does from the sources.
 * A build is written under a name from its content and published by renaming its folder, so
 * processes that start together (parallel tests) share builds safely.
 *
 * PERCPU_SIM_TSX=1 skips all of this and runs the sources through tsx.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE = join(ROOT, 'node_modules', '.cache', 'percpu-sim', 'cli');
// one manifest per checkout: worktrees may share node_modules, and so this cache
const MANIFEST = join(CACHE, manifestName(ROOT));
const SELF = relative(ROOT, fileURLToPath(import.meta.url));
/** builds other than the newest are removed once this old: a running command may still load from one */
const KEEP_MS = 24 * 3600 * 1000;

/** The manifest's file name for the checkout at `root`, from its FNV-1a hash: a start need not load node:crypto. */
export function manifestName(root) {
  let h = 0x811c9dc5;
  for (let i = 0; i < root.length; i++) h = Math.imul(h ^ root.charCodeAt(i), 0x01000193);
  return `manifest-${(h >>> 0).toString(16).padStart(8, '0')}.json`;
}

/** The URL of a fresh compiled build's entry, building it if needed; null to run the sources instead. */
export async function compiledCli() {
  if (process.env.PERCPU_SIM_TSX) return null;
  try {
    return fresh() ?? (await rebuild());
  } catch {
    return null; // a source that does not compile: tsx will say where
  }
}

/** The entry of the build the manifest names, when all its inputs are unchanged. */
function fresh() {
  let m;
  try {
    m = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(m?.inputs) || typeof m.dir !== 'string') return null;
  for (const [file, size, mtime] of m.inputs) {
    let s;
    try {
      s = statSync(join(ROOT, file));
    } catch {
      return null;
    }
    if (s.size !== size || s.mtimeMs !== mtime) return null;
  }
  const entry = join(CACHE, m.dir, 'index.mjs');
  return existsSync(entry) ? pathToFileURL(entry).href : null;
}

async function rebuild() {
  const [{ build }, { createHash }, { readFile }] = await Promise.all([
    import('esbuild'),
    import('node:crypto'),
    import('node:fs/promises'),
  ]);
  const started = Date.now();
  // never written: output paths relative to it name the build's files; with sourceRoot '/' the
  // source map names each source by its absolute path, right from whichever folder holds the build
  const out = '/';
  const pin = {
    name: 'pin-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
        const text = await readFile(args.path, 'utf8');
        const url = JSON.stringify(pathToFileURL(args.path).href);
        return {
          contents: text.replace(/\bimport\.meta\.url\b/g, url),
          loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js',
        };
      });
    },
  };
  const r = await build({
    absWorkingDir: ROOT,
    entryPoints: { index: 'src/cli/index.ts' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir: out,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'c-[hash]',
    sourcemap: 'linked',
    sourceRoot: '/',
    sourcesContent: false,
    metafile: true,
    write: false,
    logLevel: 'silent',
    plugins: [pin],
  });
  const hash = createHash('sha256');
  for (const f of r.outputFiles) hash.update(relative(out, f.path)).update(f.contents);
  const dir = hash.digest('hex').slice(0, 16);
  const final = join(CACHE, dir);
  if (!existsSync(join(final, 'index.mjs'))) {
    const tmp = `${final}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    for (const f of r.outputFiles) {
      const to = join(tmp, relative(out, f.path));
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, f.contents);
    }
    try {
      renameSync(tmp, final);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another command published the same build first
    }
  }
  // a file changed while it was being read would be recorded with its new time and old text
  const inputs = [...Object.keys(r.metafile.inputs), SELF].map((file) => {
    const s = statSync(join(ROOT, file));
    return [file, s.size, s.mtimeMs];
  });
  if (inputs.every(([, , mtime]) => mtime < started - 1000)) {
    const tmp = `${MANIFEST}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ dir, inputs }));
    renameSync(tmp, MANIFEST);
  }
  prune(dir);
  return pathToFileURL(join(final, 'index.mjs')).href;
}

/** Removes day-old builds other than `keep`. */
function prune(keep) {
  const now = Date.now();
  for (const name of readdirSync(CACHE)) {
    if (name === keep || name.startsWith('manifest-')) continue;
    const path = join(CACHE, name);
    try {
      if (now - statSync(path).mtimeMs > KEEP_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // another command removed it first
    }
  }
}
