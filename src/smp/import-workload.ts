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
  const problem = shapeProblem(wl as Record<string, unknown>);
  if (problem) throw new Error(`${file}: the workload's ${problem} (see docs/workloads.md)`);
  const w = wl as unknown as Workload;
  return w.defaults ? w : { ...w, defaults: {} };
}

/** What is wrong with a workload object's fields, or null: checked once, so nothing deeper trips on it. */
function shapeProblem(wl: Record<string, unknown>): string | null {
  if (typeof wl.name !== 'string' || wl.name === '') return 'name must be a non-empty string';
  if (wl.description !== undefined && typeof wl.description !== 'string') return 'description must be a string';
  for (const fn of ['early', 'verify', 'teardown'])
    if (wl[fn] !== undefined && typeof wl[fn] !== 'function') return `${fn} must be a function`;
  const d = wl.defaults;
  if (d === undefined) return null;
  if (d === null || typeof d !== 'object' || Array.isArray(d))
    return 'defaults must be an object of numbers, strings and booleans';
  for (const [k, v] of Object.entries(d))
    if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean')
      return `default ${k} must be a number, a string or a boolean, not ${v === null ? 'null' : typeof v}`;
  return null;
}

export async function importWorkload(url: string): Promise<Workload> {
  return workloadOf((await import(url)) as { default?: unknown }, url);
}
