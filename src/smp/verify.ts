/** Runs a workload's verify() on its own thread, bounded in time (see verify-worker.ts). */
import { Worker } from 'node:worker_threads';
import type { VerifyJob } from './verify-worker.ts';
import { workerEntry } from './worker-url.ts';
import { bundle } from './bundle.ts';

/** verify()'s failures; `timedOut` when it did not return within the bound (then no failures). */
export async function runVerify(job: VerifyJob, timeoutMs: number): Promise<{ failures: string[]; timedOut: boolean }> {
  const entry = workerEntry('src/smp/verify-worker', true);
  const w = new Worker(entry.url, {
    argv: entry.argv,
    workerData: { ...job, workload: bundle(job.workload, { sourceMap: true }).href },
  });
  try {
    const failed = (failures: string[]) => ({ failures, timedOut: false });
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ failures: [], timedOut: true }), timeoutMs);
      w.once('message', (m: { failures: string[] }) => {
        clearTimeout(timer);
        resolve(failed(m.failures));
      });
      w.once('error', (e) => {
        clearTimeout(timer);
        resolve(failed([`verify() failed: ${e.message}`]));
      });
      w.once('exit', (code) => {
        clearTimeout(timer);
        resolve(failed([`verify()'s thread ended (exit code ${code}) without an answer`]));
      });
    });
  } finally {
    await w.terminate();
  }
}
