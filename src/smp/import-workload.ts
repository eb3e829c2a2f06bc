/**
 * A workload as a worker thread imports it: already plain JavaScript (see bundle.ts), so a
 * dynamic import is all it takes; the main thread has checked it loads (load-workload.ts).
 */
import type { Workload } from '../api/workload.ts';

/** The workload a module exports, or an error saying what it exports instead. */
export function workloadOf(mod: { default?: unknown }, file: string): Workload {
  // a file compiled as CommonJS arrives with its exports one level down
  let wl = mod.default as { default?: unknown; run?: unknown } | undefined;
  if (wl && typeof wl.run !== 'function' && wl.default && typeof (wl.default as { run?: unknown }).run === 'function')
    wl = wl.default as typeof wl;
  if (!wl || typeof wl !== 'object' || typeof wl.run !== 'function')
    throw new Error(
      `${file} has no default export of a workload: export default an object with name, description, defaults and run() (see docs/workloads.md)`,
    );
  return wl as unknown as Workload;
}

export async function importWorkload(url: string): Promise<Workload> {
  return workloadOf((await import(url)) as { default?: unknown }, url);
}
