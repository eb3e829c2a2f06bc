/**
 * The CPU worker: one long-lived thread per simulated CPU (a single-thread piscina pool).
 * Each task runs one phase of a workload on this CPU: it wires the channel to the allocator
 * actor, builds the per-CPU API, and calls the workload. Errors come back as data, since
 * they cross a thread boundary.
 */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { importWorkload } from '../src/smp/import-workload.ts';
import { type ActorPort, PerCpu } from '../src/api/per-cpu.ts';
import type { AccessFault } from '../src/check/isolation.ts';
import type { CpuTask, CpuTaskResult } from '../src/smp/cpu-protocol.ts';

export type { CpuTask, CpuTaskResult };

// a workload's bundle carries its source map: a stack then names the workload's own file and line
process.setSourceMapsEnabled(true);

/** The first frame of a stack in the workload's code, as FILE:LINE: not this package's, not a dependency's. */
function sourceOf(stack: string | undefined): string | undefined {
  for (const line of (stack ?? '').split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^()]+?):(\d+):\d+\)?$/.exec(line.trim());
    if (!m) continue;
    const file = m[1]!.replace(/^file:\/\//, '');
    // this package's own frames are in bundles in node_modules/.cache
    if (/\/node_modules\//.test(file)) continue;
    return `${file}:${m[2]}`;
  }
  return undefined;
}

export default async function cpuTask(task: CpuTask): Promise<CpuTaskResult> {
  const { threadId } = await import('node:worker_threads');
  const t0 = performance.now();
  const remote = Comlink.wrap<ActorPort>(nodeEndpoint(task.port));
  // one proxy for the one remote method, made once: comlink builds a new one per property read
  const request = remote.request;
  const api = new PerCpu(task.ctx, { request: (req) => request(req) }, task.sab);
  try {
    const wl = await importWorkload(task.workload);
    const fn = task.phase === 'early' ? wl.early : task.phase === 'teardown' ? wl.teardown : wl.run;
    // a controlled run: the workload starts when the controller lets this CPU go
    api.start();
    const result = fn ? await fn.call(wl, api, task.args, task.early) : undefined;
    // the last look at the phase's checked views: a write through one of a freed area fails the phase
    api.finish();
    api.end();
    try {
      structuredClone(result);
    } catch {
      // it has to cross to the main thread: say so here, rather than lose the worker
      throw new Error(
        `${task.phase}() returned ${typeof result === 'function' ? 'a function' : 'a value that cannot cross threads'}; return plain data (numbers, strings, arrays, objects)`,
      );
    }
    return {
      cpu: api.cpu,
      threadId,
      ok: true,
      result,
      stats: api.stats,
      faults: api.faults,
      ms: performance.now() - t0,
    };
  } catch (e) {
    const err = e as Error & { code?: string; addr?: number; fault?: AccessFault };
    const error: NonNullable<CpuTaskResult['error']> = { name: err.name ?? 'Error', message: err.message ?? String(e) };
    const at = sourceOf(err.stack);
    if (at) error.at = at;
    if (err.code !== undefined) error.code = String(err.code);
    if (typeof err.addr === 'number') error.addr = err.addr;
    if (err.fault && typeof err.fault === 'object') error.fault = err.fault;
    return {
      cpu: api.cpu,
      threadId,
      ok: false,
      error,
      stats: api.stats,
      faults: api.faults,
      ms: performance.now() - t0,
    };
  } finally {
    api.end();
    remote[Comlink.releaseProxy]();
    task.port.close();
  }
}
