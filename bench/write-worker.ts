/** Worker side of the translated-write benchmark: raw typed-array stores vs MemAccess.write32. */
import { parentPort, workerData } from 'node:worker_threads';
import { MemAccess } from '../src/mem/access.ts';

const { sab, va, bytes, rounds } = workerData as { sab: SharedArrayBuffer; va: number; bytes: number; rounds: number };
const mem = new MemAccess(sab);
const phys = mem.translate(va);
const words = bytes >> 2;

function raw(): number {
  const a = mem.i32;
  const base = phys >> 2;
  const t = performance.now();
  for (let r = 0; r < rounds; r++) for (let i = 0; i < words; i++) a[base + i] = i + r;
  return (rounds * words) / ((performance.now() - t) / 1000);
}

function translated(): number {
  // the same loop shape as raw(): locals for the target, only the store differs
  const m = mem;
  const base = va;
  const t = performance.now();
  for (let r = 0; r < rounds; r++) for (let i = 0; i < words; i++) m.write32(base + i * 4, i + r);
  return (rounds * words) / ((performance.now() - t) / 1000);
}

raw();
translated(); // warm up both paths
const results = { raw: Math.max(raw(), raw()), translated: Math.max(translated(), translated()) };
parentPort!.postMessage(results);
