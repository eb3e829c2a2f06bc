import { bundle } from './bundle.ts';

/** Where a worker's entry file is, whether we run from .ts sources or from a .js build. */
export interface WorkerEntry {
  url: URL;
  argv: string[];
}

/**
 * The entry for the worker module `file` (a path relative to the repository root, without
 * extension). A worker that `bundled` says can be bundled runs as one file of plain
 * JavaScript (see bundle.ts); from the sources, any other goes through ts-boot.mjs, which
 * loads tsx inside the worker.
 */
export function workerEntry(file: string, bundled = false): WorkerEntry {
  const here = import.meta.url;
  const root = new URL('../..', here);
  if (here.endsWith('.ts')) {
    if (bundled) return { url: bundle(new URL(`${file}.ts`, root).href, { entry: true }), argv: [] };
    return { url: new URL('./ts-boot.mjs', here), argv: [`--ts-entry=${new URL(`${file}.ts`, root).href}`] };
  }
  // from a build, a bundled entry is still one file: one module to load instead of a dozen
  return {
    url: bundled ? bundle(new URL(`${file}.js`, root).href, { entry: true }) : new URL(`${file}.js`, root),
    argv: [],
  };
}
