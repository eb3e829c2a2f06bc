/**
 * A CPU that fails a phase ends it for everyone at once: the others leave their barriers,
 * the verdict names the failure that caused it (not one time-out per CPU that waited), and
 * the report keeps every CPU's row. Bounds given with phaseTimeoutMs are exact.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runWorkload } from '../../src/smp/run.ts';

const crash = fileURLToPath(new URL('../fixtures/crash.ts', import.meta.url));
const stopped = (cpu: number) => `PercpuError: cpu ${cpu}: stopped at a barrier: another CPU failed`;

describe('a failed phase', () => {
  it.each([1, 2])('a CPU that throws releases the barrier at once (%i CPUs per thread)', async (cpusPerThread) => {
    const t = Date.now();
    const r = await runWorkload({
      workload: crash,
      seed: 3,
      cpus: 4,
      cpusPerThread,
      args: { how: 'throw', barrier: true },
      phaseTimeoutMs: 20_000,
    });
    expect(Date.now() - t).toBeLessThan(8000);
    expect(r.verdict).toBe('fail');
    expect(r.violations.map((v) => v.message)).toEqual([`cpu 1: Error: boom from the workload (at ${crash}:14)`]);
    expect(r.cpus.map((c) => c.error ?? 'ok')).toEqual([
      stopped(0),
      'Error: boom from the workload',
      stopped(2),
      stopped(3),
    ]);
  });

  it('a thread that dies under M:N: its CPUs are lost, the others stopped, every row kept', async () => {
    const t = Date.now();
    const r = await runWorkload({
      workload: crash,
      seed: 3,
      cpus: 4,
      cpusPerThread: 2,
      args: { how: 'exit', barrier: true },
      phaseTimeoutMs: 20_000,
    });
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(r.verdict).toBe('fail');
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]!.message).toMatch(/^cpu [01]: worker thread died: /);
    expect(r.cpus.map((c) => [c.cpu, c.lost ?? null])).toEqual([
      [0, 'died'],
      [1, 'died'],
      [2, null],
      [3, null],
    ]);
    expect(r.cpus[2]!.error).toBe(stopped(2));
  });

  it('a CPU that hangs times out after exactly the bound given, and the report keeps every CPU', async () => {
    const t = Date.now();
    const r = await runWorkload({
      workload: crash,
      seed: 3,
      cpus: 8,
      cpusPerThread: 4,
      args: { how: 'hang', barrier: true },
      phaseTimeoutMs: 2000,
    });
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(r.verdict).toBe('timeout');
    expect(r.violations.map((v) => [v.checker, v.kind, v.message])).toEqual([
      ['workers', 'timeout', 'cpu 1: timed out: made no progress for 2 s'],
    ]);
    expect(r.cpus).toHaveLength(8);
    expect(r.cpus[1]).toMatchObject({ ok: false, lost: 'timeout' });
  });

  it('CPUs left waiting at a barrier are one time-out that says who never came', async () => {
    const t = Date.now();
    const r = await runWorkload({
      workload: crash,
      seed: 3,
      cpus: 4,
      args: { how: 'leave', barrier: true },
      phaseTimeoutMs: 2000,
    });
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(r.verdict).toBe('timeout');
    expect(r.violations.map((v) => [v.checker, v.kind, v.message])).toEqual([
      [
        'workers',
        'timeout',
        'cpus 0, 2, 3 timed out at a barrier: no CPU made progress for 2 s; cpu 1 never reached it',
      ],
    ]);
    expect(r.cpus.map((c) => c.ok)).toEqual([false, true, false, false]);
  });
});
