/**
 * A damaged bundle in the cache (cut short, or overwritten) is noticed and written again: the
 * run passes as it did, instead of failing on a syntax error in a file nobody wrote.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CACHE = 'node_modules/.cache/percpu-sim';
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'percpu-sim-bundle-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the bundle cache', () => {
  it('rebuilds a damaged bundle', () => {
    // a workload of its own, so that its bundle is no other test's
    const marker = `cache-check-${process.pid}-${Date.now()}`;
    const file = join(dir, 'w.ts');
    writeFileSync(
      file,
      `import type { Workload } from 'percpu-sim';
const w: Workload = {
  name: '${marker}',
  defaults: {},
  async run(cpu) {
    const p = await cpu.alloc_percpu(8, 8);
    await cpu.free_percpu(p!);
    return 1;
  },
};
export default w;
`,
    );
    const run = () =>
      spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'run', file, '--cpus', '2', '--seed', '1'], {
        encoding: 'utf8',
        timeout: 90_000,
      });
    const first = run();
    expect(first.status).toBe(0);
    const bundled = readdirSync(CACHE)
      .map((f) => join(CACHE, f))
      .filter((f) => f.endsWith('.mjs') && readFileSync(f, 'utf8').includes(marker));
    expect(bundled).toHaveLength(1);
    const good = readFileSync(bundled[0]!, 'utf8');
    for (const damage of [good.slice(0, 100), 'garbage\n']) {
      writeFileSync(bundled[0]!, damage);
      const again = run();
      expect(again.stdout).toContain('== verdict: PASS ==');
      expect(again.status).toBe(0);
      expect(readFileSync(bundled[0]!, 'utf8')).toBe(good);
    }
    rmSync(bundled[0]!);
  });
});
