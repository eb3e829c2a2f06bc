/**
 * Misuse of the per-CPU API is refused with a line that says what was wrong: a CPU that is
 * not possible on the machine, a width that is not 1, 2 or 4 bytes. Not a paging fault at
 * NaN, and not a 4-byte access for a width of 3.
 */
import { describe, expect, it } from 'vitest';
import { PercpuError, type PerCpu } from '../../src/api/per-cpu.ts';
import { sim } from '../check/sim.ts';

const refused = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PercpuError);
    expect((e as PercpuError).code).toBe('EINVAL');
    return (e as Error).message;
  }
  throw new Error('not refused');
};

const WIDTH = '(8-byte values go through this_cpu_read64, this_cpu_write64, atomic_read64 and atomic_write64)';

describe.each([true, false])('the per-CPU API, checking %s', (check) => {
  const setup = async (): Promise<{ c: PerCpu; p: number; va: number }> => {
    const c = sim({ cpus: 2, check }).cpu(0);
    const p = await c.alloc_percpu(16, 8);
    return { c, p, va: c.this_cpu_ptr(p) };
  };

  it('refuses a CPU that is not possible, naming the call', async () => {
    const { c, p, va } = await setup();
    const not = (op: string, cpu: number) => `${op}: cpu ${cpu} is not a possible CPU (this machine has cpus 0-1)`;
    expect(refused(() => c.per_cpu_read(p, 99))).toBe(not('per_cpu_read', 99));
    expect(refused(() => c.per_cpu_write(p, 2, 1))).toBe(not('per_cpu_write', 2));
    expect(refused(() => c.per_cpu_ptr(p, -1))).toBe(not('per_cpu_ptr', -1));
    expect(refused(() => c.per_cpu_ptr(p, 1.5))).toBe(not('per_cpu_ptr', 1.5));
    expect(refused(() => c.per_cpu('irq_count', 2))).toBe(not('per_cpu_ptr', 2));
    expect(refused(() => c.write(va, 1, 4, 7))).toBe(not('write', 7));
    expect(refused(() => c.read(va, 4, 7))).toBe(not('read', 7));
    expect(refused(() => c.atomic_add(va, 1, 4, 9))).toBe(not('write', 9));
    // the possible ones still work
    c.per_cpu_write(p, 1, 5);
    expect(c.per_cpu_read(p, 1)).toBe(5);
  });

  it('refuses a width other than 1, 2 or 4, naming the call', async () => {
    const { c, p, va } = await setup();
    const bad = (op: string, w: number) => `${op}: width ${w} is not 1, 2 or 4 bytes ${WIDTH}`;
    const w3 = 3 as 4;
    expect(refused(() => c.this_cpu_read(p, w3))).toBe(bad('this_cpu_read', 3));
    expect(refused(() => c.this_cpu_write(p, 1, w3))).toBe(bad('this_cpu_write', 3));
    expect(refused(() => c.this_cpu_add(p, 1, w3))).toBe(bad('this_cpu_add', 3));
    expect(refused(() => c.per_cpu_read(p, 1, w3))).toBe(bad('per_cpu_read', 3));
    expect(refused(() => c.per_cpu_write(p, 1, 1, 8 as 4))).toBe(bad('per_cpu_write', 8));
    expect(refused(() => c.read(va, 8 as 4))).toBe(bad('read', 8));
    expect(refused(() => c.write(va, 1, 0 as 4))).toBe(bad('write', 0));
    expect(refused(() => c.atomic_read(va, w3))).toBe(bad('atomic_read', 3));
    expect(refused(() => c.atomic_write(va, 1, w3))).toBe(bad('atomic_write', 3));
    expect(refused(() => c.atomic_add(va, 1, w3))).toBe(bad('atomic_add', 3));
    // nothing was written by the refused calls
    expect(c.this_cpu_read(p, 4)).toBe(0);
  });
});
