/**
 * A workload's verify() runs here, on a thread of its own, so that one that never returns can
 * be stopped: the main thread waits a bounded time, then terminates this thread. It sees the
 * machine's memory through the shared buffer, and translates with the checkers' own walk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PageWalk } from '../check/walk.ts';
import { MemAccess } from '../mem/access.ts';
import { importWorkload } from './import-workload.ts';
import type { Args } from '../api/workload.ts';

export interface VerifyJob {
  workload: string;
  sab: SharedArrayBuffer;
  results: unknown[];
  early: unknown;
  args: Args;
  nr_cpus: number;
  offsets: number[];
  cpuToNode: number[];
  dmesg: string[];
}

const job = workerData as VerifyJob;
try {
  const wl = await importWorkload(job.workload);
  const walk = new PageWalk(job.sab);
  const out = wl.verify!({
    results: job.results,
    early: job.early,
    args: job.args,
    nr_cpus: job.nr_cpus,
    access: new MemAccess(job.sab),
    per_cpu_ptr: (ptr, cpu) => ptr + job.offsets[cpu]!,
    cpu_to_node: (cpu) => job.cpuToNode[cpu]!,
    phys_to_node: (phys) => walk.nodeOf(phys),
    per_cpu_ptr_to_phys: (addr) => walk.walk(addr),
    dmesg: job.dmesg,
  });
  const ok = Array.isArray(out) && out.every((x) => typeof x === 'string');
  parentPort!.postMessage(
    ok
      ? { failures: out }
      : {
          failures: [
            `verify() must return an array of strings (one per failure), got ${Array.isArray(out) ? 'an array holding other things' : typeof out}`,
          ],
        },
  );
} catch (e) {
  parentPort!.postMessage({
    failures: [`verify() threw ${(e as Error).name ?? 'an error'}: ${(e as Error).message ?? String(e)}`],
  });
}
