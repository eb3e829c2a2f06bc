/** Baseline worker: echoes every message straight back (raw postMessage ping-pong). */
import { parentPort } from 'node:worker_threads';

parentPort!.on('message', (m) => parentPort!.postMessage(m));
