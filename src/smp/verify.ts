/** Runs a workload's verify() on its own thread, bounded in time (see verify-worker.ts). */
import { Worker } from 'node:worker_threads';
import type { VerifyJob } from './verify-worker.ts';
import { workerEntry } from './worker-url.ts';
import { bundle } from './bundle.ts';

export async function runVerify(job: VerifyJob, timeoutMs: number): Promise<string[]> {
  const entry = workerEntry('src/smp/verify-worker', true);
  const w = new Worker(entry.url, { argv: entry.argv, workerData: { ...job, workload: bundle(job.workload).href } });
  try {
    return await new Promise<string[]>((resolve) => {
      const timer = setTimeout(
        () => resolve([`verify() did not finish within ${timeoutMs / 1000} s (timed out)`]),
        timeoutMs,
      );
      w.once('message', (m: { failures: string[] }) => {
        clearTimeout(timer);
        resolve(m.failures);
      });
      w.once('error', (e) => {
        clearTimeout(timer);
        resolve([`verify() failed: ${e.message}`]);
      });
      w.once('exit', (code) => {
        clearTimeout(timer);
        resolve([`verify()'s thread ended (exit code ${code}) without an answer`]);
      });
    });
  } finally {
    await w.terminate();
  }
}
