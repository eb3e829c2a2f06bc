/**
 * The default demo: a percpu counter made before slab is online, counted on every CPU, while
 * every CPU also churns through allocations of its own (see counter.ts and churn.ts).
 */
import type { Workload } from 'percpu-sim';
import churn from './churn.ts';
import counter from './counter.ts';

interface DemoResult {
  counter: { ptr: number; adds: number };
  churn: Awaited<ReturnType<typeof churn.run>>;
}

const demo: Workload<DemoResult> = {
  name: 'demo',
  description: 'a percpu counter from early boot plus allocation churn on every CPU',
  defaults: { ...counter.defaults, ...churn.defaults, adds: 200_000 },
  early: (cpu, args) => counter.early!(cpu, args),
  async run(cpu, args, early) {
    const c = await counter.run(cpu, args, early);
    const ch = await churn.run(cpu, args, early);
    return { counter: c, churn: ch };
  },
  verify(ctx) {
    return [
      ...counter.verify!({ ...ctx, results: ctx.results.map((r) => r.counter) }),
      ...churn.verify!({ ...ctx, results: ctx.results.map((r) => r.churn) }),
    ];
  },
  teardown: (cpu, args, early) => counter.teardown!(cpu, args, early),
};

export default demo;
