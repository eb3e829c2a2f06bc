/**
 * Loading a workload module: an example of this project, or a user's file in .ts, .mts, .js or
 * .mjs from any folder. tsx's scoped import loads a TypeScript file as a module whatever the
 * package around it says, so a .ts file outside a "type": "module" package works too.
 */
import { fileURLToPath } from 'node:url';
import type { Workload } from '../api/workload.ts';
import { workloadOf } from './import-workload.ts';

/** A workload file that cannot be loaded: one line, the file, the line if known, the cause. */
export class WorkloadLoadError extends Error {
  override readonly name = 'ConfigError';
}

export async function loadWorkload(url: string): Promise<Workload> {
  const file = url.startsWith('file:') ? fileURLToPath(url) : url;
  let mod: { default?: unknown };
  try {
    // loaded here, not at the top: a thread that only imports bundles never needs tsx
    const { tsImport } = await import('tsx/esm/api');
    mod = (await tsImport(file, import.meta.url)) as { default?: unknown };
  } catch (e) {
    const err = e as Error;
    const where =
      /:(\d+):(\d+)/.exec(err.message) ??
      /:(\d+):(\d+)/.exec(err.stack?.split('\n').find((l) => l.includes(file)) ?? '');
    const lines = (err.message ?? String(e)).split('\n');
    // esbuild says where and what on a line of its own: "file:2:20: ERROR: Unexpected ..."
    const compile = lines.find((l) => l.includes('ERROR: '));
    const cause = compile
      ? `SyntaxError: ${compile.replace(/^.*?ERROR: /, '')}`
      : `${err.name ?? 'Error'}: ${lines.find((l) => l.trim()) ?? String(e)}`;
    throw new WorkloadLoadError(`cannot load the workload ${file}${where ? ` (line ${where[1]})` : ''}: ${cause}`);
  }
  try {
    return workloadOf(mod, file);
  } catch (e) {
    throw new WorkloadLoadError((e as Error).message);
  }
}
