/**
 * Stress goes through the allocator actor, so a bug in the lifecycle's admission rules is
 * something a default stress run reports: the lifecycle checker keeps its own table of what
 * each state allows and watches every admission and refusal.
 */
import { describe, expect, it } from 'vitest';
import { LIFECYCLE, type LifecycleRules } from '../../src/actor/machine.ts';
import { admission } from '../../src/sim/lifecycle.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';

const short = { ...DEFAULT_STRESS, args: { ...DEFAULT_STRESS.args, ops: 60, earlyOps: 20 } };

describe('the lifecycle checked through the actor', () => {
  it('is silent on the correct lifecycle, which refuses init_late before slab, while it runs, and after', async () => {
    const r = await runStress({ ...short, seed: 2 }, { keepLog: true });
    expect(r.violations).toEqual([]);
    expect(r.log.filter((e) => e.type === 'refuse').map((e) => (e.type === 'refuse' ? e.error : ''))).toEqual([
      'percpu: percpu_init_late before slab is online (mm_init)',
      'percpu: percpu_init_late is already running',
      'percpu: percpu_init_late has already run',
    ]);
    const states = r.log.flatMap((e) => (e.type === 'lifecycle' ? [e.state] : []));
    expect(states).toEqual(['boot', 'early', 'slabOnline', 'lateInit', 'running']);
  });

  it('reports percpu_init_late admitted again while the first is still queued', async () => {
    const queued: LifecycleRules = {
      ...LIFECYCLE,
      admission: (state, req) =>
        state === 'lateInit' && req.kind === 'init_late' ? { admit: true } : admission(state, req),
    };
    const r = await runStress({ ...short, seed: 2 }, { rules: queued });
    expect(r.violations[0]).toMatchObject({ checker: 'lifecycle', kind: 'admitted', cpu: 0 });
    expect(r.violations[0]!.message).toBe('percpu_init_late() admitted a second time');
  });

  it('reports percpu_init_late admitted a second time', async () => {
    const twice: LifecycleRules = {
      ...LIFECYCLE,
      admission: (state, req) =>
        state === 'running' && req.kind === 'init_late' ? { admit: true } : admission(state, req),
    };
    const r = await runStress({ ...short, seed: 2 }, { rules: twice });
    expect(r.verdict).toBe('violation');
    expect(r.violations[0]).toMatchObject({
      checker: 'lifecycle',
      kind: 'admitted',
      cpu: 0,
      message: 'percpu_init_late() admitted a second time',
    });
  });

  it('reports late init skipped: running straight from slab online', async () => {
    const skip: LifecycleRules = { ...LIFECYCLE, steps: { ...LIFECYCLE.steps, early: { SLAB_ONLINE: 'running' } } };
    const r = await runStress({ ...short, seed: 2 }, { rules: skip });
    expect(r.verdict).toBe('violation');
    expect(r.violations[0]).toMatchObject({
      checker: 'lifecycle',
      kind: 'skipped',
      message: 'running without percpu_init_late(): the first and reserved chunks keep their __initdata area maps',
    });
  });

  it('reports an allocation refused in a state that allows it', async () => {
    const early: LifecycleRules = {
      ...LIFECYCLE,
      admission: (state, req) =>
        state === 'early' && req.kind === 'alloc' ? { admit: false, error: 'percpu: not yet' } : admission(state, req),
    };
    const r = await runStress({ ...short, seed: 3 }, { rules: early });
    expect(r.violations[0]).toMatchObject({
      checker: 'lifecycle',
      kind: 'refused',
      message: "cpu 0's alloc refused in state early: percpu: not yet",
    });
  });
});
