/**
 * The memory really is shared: two worker threads write disjoint vmalloc pages through the
 * translation helpers, and the main thread reads back exactly their data.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../../src/mem/layout.ts';
import { Machine } from '../../src/mem/machine.ts';
import { workerEntry } from '../../src/smp/worker-url.ts';

function runWriter(sab: SharedArrayBuffer, va: number, pages: number, tag: number): Promise<{ faults: number }> {
  const e = workerEntry('test/fixtures/mem-writer');
  const w = new Worker(e.url, { argv: e.argv, workerData: { sab, va, pages, tag } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void w.terminate();
      reject(new Error(`writer ${tag} did not finish within 20 s`));
    }, 20_000);
    w.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as { faults: number });
      void w.terminate();
    });
    w.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe('shared memory', () => {
  it('two workers write disjoint pages; the main thread sees exactly their data', async () => {
    const m = new Machine({ cpus: 2, memoryBytes: 4 << 20, shadow: false });
    m.mmInit();
    const area = m.vm.getVmArea(4 * PAGE_SIZE)!;
    const pfns = [m.buddy.allocPages(0), m.buddy.allocPages(0), m.buddy.allocPages(0), m.buddy.allocPages(0)];
    m.vm.mapPages(area.addr, pfns);
    const [a, b] = await Promise.all([
      runWriter(m.sab, area.addr, 2, 1),
      runWriter(m.sab, area.addr + 2 * PAGE_SIZE, 2, 2),
    ]);
    expect([a.faults, b.faults]).toEqual([0, 0]);
    for (let i = 0; i < 2048; i++) {
      expect(m.access.read32(area.addr + i * 4)).toBe(1_000_000 + i);
      expect(m.access.read32(area.addr + 2 * PAGE_SIZE + i * 4)).toBe(2_000_000 + i);
    }
  });
});
