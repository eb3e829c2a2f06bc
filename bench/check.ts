/** The cost of the isolation check: checked against unchecked per-CPU writes, same thread. */
import type { Reply } from '../src/actor/types.ts';
import { IsolationTracker } from '../src/check/isolation.ts';
import { Scheduler } from '../src/actor/scheduler.ts';
import { mm_init, setup_per_cpu_areas } from '../src/kernel/setup.ts';
import { Machine } from '../src/mem/machine.ts';
import { type CpuContext, PerCpu } from '../workers/cpu-api.ts';

type Row = (name: string, value: number, unit: string, baseline?: { name: string; value: number }) => void;

export async function benchCheck(row: Row): Promise<void> {
  console.log('check: the isolation checker on per-CPU writes');
  const machine = new Machine({ cpus: 2, memoryBytes: 64 << 20, shadow: true });
  const pc = setup_per_cpu_areas(machine, {});
  mm_init(machine, pc);
  const tracker = new IsolationTracker(pc, 1);
  const core = new Scheduler(pc, { seed: 1, policy: 'fifo', onEvent: (e) => tracker.observe(e) });
  const make = (check: boolean): PerCpu => {
    const ctx: CpuContext = { cpu: 0, nr_cpus: 2, seed: 1, per_cpu_offset: [...pc.__per_cpu_offset], static_vars: {}, barrier_timeout_ms: 1000, check_isolation: check };
    const port = { request: (req: unknown) => new Promise<Reply>((res) => (core.admit({ ...(req as object), cpu: 0 } as never, res), core.drain())) };
    return new PerCpu(ctx, port, machine.sab);
  };
  const n = 3_000_000;
  const rates: Record<string, number> = {};
  for (const check of [false, true]) {
    const cpu = make(check);
    const p = await cpu.alloc_percpu(4096, 64);
    const va = cpu.this_cpu_ptr(p);
    const loop = (): number => {
      const t = performance.now();
      for (let i = 0; i < n; i++) cpu.write(va + ((i * 4) & 4092), i);
      return n / ((performance.now() - t) / 1000);
    };
    loop();
    rates[String(check)] = Math.max(loop(), loop());
  }
  row('checked write32 (shadow + unit owner)', rates.true!, ' writes/s', { name: 'unchecked write32', value: rates.false! });
}
