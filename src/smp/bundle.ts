/**
 * Worker threads run plain JavaScript. From the TypeScript sources, a worker entry (and every
 * workload a CPU runs) is bundled once with esbuild into node_modules/.cache/percpu-sim/, so a
 * thread starts without a TypeScript loader of its own: a 256-CPU machine starts 256 small
 * threads, not 256 compilers. Packages stay imports, resolved from the project's node_modules,
 * except 'percpu-sim' itself (what examples and workloads import): it is bundled from this
 * checkout, since a bundle in the cache is outside the package and could not name it.
 *
 * Bundles are named by a hash of their content and written by rename, so concurrent processes
 * (parallel test files) share them safely; one whose file no longer holds that content is
 * written again.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Plugin, build, buildSync } from 'esbuild';

const CACHE = fileURLToPath(new URL('../../node_modules/.cache/percpu-sim', import.meta.url));
const made = new Map<string, URL>();
/** The package's own entry (src/index.ts, or index.js in a build) for `import ... from 'percpu-sim'`. */
const SELF = {
  'percpu-sim': fileURLToPath(new URL(`../index.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url)),
};

export interface BundleOptions {
  /** refuse code that uses import.meta.url: in a bundle it names the cache, not the source */
  entry?: boolean;
  /** carry a source map, so that a stack names the source's file and line (a workload's) */
  sourceMap?: boolean;
}

/** How every module for a CPU thread is bundled: ESM for Node 20, packages left to Node, 'percpu-sim' this checkout. */
const buildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  alias: SELF,
  write: false,
  logLevel: 'silent',
} as const;

/** The bundled module of `file` (a path or file URL of a .ts, .mts, .js or .mjs module). */
export function bundle(file: string, opts: BundleOptions = {}): URL {
  const path = file.startsWith('file:') ? fileURLToPath(file) : file;
  const key = opts.sourceMap ? `${path}#map` : path;
  const known = made.get(key);
  if (known) return known;
  // the map's paths are absolute (relative to /, the root): the cache may be reached through a
  // link, and be shared by other checkouts, so a path relative to it could name another's file
  const maps = opts.sourceMap
    ? ({ sourcemap: 'inline', sourcesContent: false, outdir: '/', sourceRoot: '/' } as const)
    : {};
  const r = buildSync({ ...buildOptions, ...maps, entryPoints: [path] });
  const code = r.outputFiles[0]!.text;
  if (opts.entry && /\bimport\.meta\.url\b/.test(code))
    throw new Error(`${path}: a worker entry may not use import.meta.url, which in a bundle names the cache`);
  const url = store(path, code);
  made.set(key, url);
  return url;
}

/** Writes a bundle into the cache under a name from its content; returns its URL. */
function store(path: string, code: string): URL {
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const out = join(CACHE, `${basename(path).replace(/\.[cm]?[jt]s$/, '')}-${hash}.mjs`);
  // a file cut short or overwritten (a full disk, a killed copy, a hand edit) is written again,
  // or a thread would load it and die of a syntax error that is not the code's
  if (!intact(out, code)) {
    mkdirSync(CACHE, { recursive: true });
    const tmp = `${out}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, out);
  }
  return pathToFileURL(out);
}

/** Whether the cache holds exactly this bundle under that name. */
function intact(out: string, code: string): boolean {
  try {
    return readFileSync(out, 'utf8') === code;
  } catch {
    return false;
  }
}

/**
 * Bundles a worker entry whose modules use import.meta.url to find files beside them (the
 * stress engine does): each module's import.meta.url is pinned to its own source URL, so the
 * bundle behaves as the sources do. Needs esbuild's plugins, so it is asynchronous.
 */
export async function bundleWithSourceUrls(file: string): Promise<URL> {
  const path = file.startsWith('file:') ? fileURLToPath(file) : file;
  const key = `${path}#source-urls`;
  const known = made.get(key);
  if (known) return known;
  const pin: Plugin = {
    name: 'pin-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
        const { readFile } = await import('node:fs/promises');
        const text = await readFile(args.path, 'utf8');
        const contents = text.replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href));
        return { contents, loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
      });
    },
  };
  const r = await build({ ...buildOptions, entryPoints: [path], plugins: [pin] });
  const url = store(path, r.outputFiles[0]!.text);
  made.set(key, url);
  return url;
}
