/** Baseline worker: comlink calls into the main thread that do nothing (comlink's own cost). */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';

const { port, n } = workerData as { port: MessagePort; n: number };
const remote = Comlink.wrap<{ request(x: unknown): Promise<unknown> }>(nodeEndpoint(port));
const request = remote.request;
for (let i = 0; i < 500; i++) await request(i);
const t = performance.now();
for (let i = 0; i < n; i++) await request(i);
parentPort!.postMessage(n / ((performance.now() - t) / 1000));
