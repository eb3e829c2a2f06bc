/** Where a worker's entry file is, whether we run from .ts sources or from a .js build. */
export interface WorkerEntry {
  url: URL;
  argv: string[];
}

/**
 * The entry for the worker module `file` (a path relative to the repository root, without
 * extension). From sources, it goes through ts-boot.mjs, which loads tsx inside the worker.
 */
export function workerEntry(file: string): WorkerEntry {
  const here = import.meta.url;
  const root = new URL('../../', here);
  if (here.endsWith('.ts')) {
    return { url: new URL('./ts-boot.mjs', here), argv: [`--ts-entry=${new URL(`${file}.ts`, root).href}`] };
  }
  return { url: new URL(`${file}.js`, root), argv: [] };
}
