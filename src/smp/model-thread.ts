/**
 * `replay --reference` with the two replays side by side: the 2.6.36 model on a worker
 * thread (workers/model-replay.ts) while the allocator replays in this one. The two share
 * nothing, so on two cores the comparison costs about the slower of them rather than the sum.
 */
import { Worker } from 'node:worker_threads';
import type { ReplayOptions } from '../trace/replay.ts';
import { type ReferenceComparison, type Side, allocatorSide, compareSides, prepareSide } from '../trace/reference.ts';
import { workerEntry } from './worker-url.ts';

/** The model's side of `text`, replayed on a thread of its own. Rejects when the thread dies. */
export function modelSideOnThread(text: string): Promise<Side> {
  const entry = workerEntry('workers/model-replay', true);
  const w = new Worker(entry.url, { argv: entry.argv });
  return new Promise<Side>((resolve, reject) => {
    let done = false;
    w.once('message', (m: { text: string; count: number; stopped: string | null }) => {
      done = true;
      resolve({ lines: m.count ? m.text.split('\n') : [], stopped: m.stopped });
      void w.terminate();
    });
    w.once('error', (e) => {
      done = true;
      reject(new Error(`the reference model's thread failed: ${e.message}`));
    });
    // an exit without a message (out of memory, terminated) must not leave the caller waiting
    w.once('exit', (code) => {
      if (!done) reject(new Error(`the reference model's thread exited (code ${code}) before it answered`));
    });
    w.postMessage(text);
  });
}

/** compareWithReference() with the model on a second thread: the same result. */
export async function compareWithReferenceOnThreads(
  text: string,
  opts: ReplayOptions = {},
): Promise<ReferenceComparison> {
  const model = modelSideOnThread(text);
  // the model's result waits in the thread's port while this thread replays
  const allocator = allocatorSide(text, opts);
  // what needs only this side is done before waiting: the model is usually still running
  const prepared = prepareSide(text, allocator);
  return compareSides(text, allocator, await model, prepared);
}
