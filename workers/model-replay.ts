/**
 * The reference model's side of `replay --reference`, on a thread of its own: the model and
 * the allocator replay the same trace at the same time, each on a core. Receives the trace's
 * text, sends back the model's output lines as one text and the bad line it stopped at.
 */
import { parentPort } from 'node:worker_threads';
import { modelSide } from '../src/trace/reference.ts';

parentPort!.once('message', (text: string) => {
  const side = modelSide(text);
  parentPort!.postMessage({ text: side.lines.join('\n'), count: side.lines.length, stopped: side.stopped });
});
