/**
 * The allocator actor: an XState machine over the boot lifecycle
 *
 *   off -> early (setup_per_cpu_areas done, no slab) -> slabOnline (mm_init done)
 *       -> running (percpu_init_late done) -> draining -> shutdown
 *
 * Every state answers every request: allowed ones become tasks on the scheduler's run queue
 * (src/sim/scheduler.ts), the rest get a typed refusal that says why. XState processes one
 * event at a time from its mailbox, which is what serializes the allocator; the scheduler's
 * explicit queue keeps requests that cannot run yet, since XState drops events a state does
 * not handle.
 */
import { assign, setup } from 'xstate';
import type { Machine } from '../mem/machine.ts';
import type { Percpu } from '../kernel/percpu.ts';
import { mm_init } from '../kernel/setup.ts';
import { Scheduler, type SchedulerOptions } from '../sim/scheduler.ts';
import type { Reply, Request } from '../sim/events.ts';

export interface ActorInput {
  machine: Machine;
  sched: SchedulerOptions;
}

export interface ActorContext {
  machine: Machine;
  sched: SchedulerOptions;
  pc: Percpu | null;
  core: Scheduler | null;
  /** free pages right after mm init: shutdown must get back to exactly this */
  postBootFree: number;
  postBootMeta: number;
}

export type ActorEventIn =
  | { type: 'BOOT'; pc: Percpu }
  | { type: 'SLAB_ONLINE' }
  | { type: 'LATE_DONE' }
  | { type: 'REQUEST'; req: Request; reply: (r: Reply) => void }
  | { type: 'TICK'; steps: number }
  | { type: 'SHUTDOWN' };

/** Why a request is refused in a state, or null when it is allowed there. */
export function refusal(state: string, req: Request): string | null {
  const what =
    req.kind === 'free' || req.kind === 'free_batch'
      ? 'free_percpu'
      : req.kind === 'init_late'
        ? 'percpu_init_late'
        : 'allocation';
  switch (state) {
    case 'off':
      return `percpu: ${what} before setup_per_cpu_areas`;
    case 'early':
      return req.kind === 'init_late' ? 'percpu: percpu_init_late before slab is online (mm_init)' : null;
    case 'slabOnline':
      return null;
    case 'running':
      return req.kind === 'init_late' ? 'percpu: percpu_init_late has already run' : null;
    case 'draining':
      return `percpu: ${what} while the machine is shutting down`;
    case 'shutdown':
      return `percpu: ${what} after shutdown`;
    default:
      return `percpu: ${what} in unknown state ${state}`;
  }
}

function admitOrRefuse(state: string, ctx: ActorContext, req: Request, reply: (r: Reply) => void): void {
  const why = refusal(state, req);
  if (why !== null || !ctx.core) {
    const error = why ?? `percpu: ${req.kind} before setup_per_cpu_areas`;
    ctx.core?.record({ type: 'refuse', task: -1, cpu: req.cpu, req, error });
    reply({ ok: false, refused: true, error });
    return;
  }
  ctx.core.admit(req, reply);
}

function tick(ctx: ActorContext, steps: number): void {
  for (let i = 0; i < steps && ctx.core && !ctx.core.idle; i++) ctx.core.step();
}

type Lifecycle = 'early' | 'slabOnline' | 'running' | 'draining' | 'shutdown';

export const allocatorMachine = setup({
  types: {
    context: {} as ActorContext,
    events: {} as ActorEventIn,
    input: {} as ActorInput,
  },
  actions: {
    /** every state answers every request: admit it, or refuse it with the state's reason */
    serve: ({ context, event }, params: { state: string }) => {
      if (event.type === 'REQUEST') admitOrRefuse(params.state, context, event.req, event.reply);
    },
    tick: ({ context, event }) => {
      if (event.type === 'TICK') tick(context, event.steps);
    },
    /** the lifecycle goes into the event log as each state is entered */
    record: ({ context }, params: { state: Lifecycle }) => {
      context.core?.record({ type: 'lifecycle', task: -1, cpu: 0, state: params.state });
    },
  },
}).createMachine({
  id: 'percpu',
  context: ({ input }) => ({
    machine: input.machine,
    sched: input.sched,
    pc: null,
    core: null,
    postBootFree: 0,
    postBootMeta: 0,
  }),
  initial: 'off',
  states: {
    off: {
      on: {
        BOOT: {
          target: 'early',
          actions: assign(({ context, event }) => {
            const core = new Scheduler(event.pc, context.sched);
            core.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'boot' });
            return { pc: event.pc, core };
          }),
        },
        REQUEST: { actions: { type: 'serve', params: { state: 'off' } } },
      },
    },
    early: {
      entry: { type: 'record', params: { state: 'early' } },
      on: {
        REQUEST: { actions: { type: 'serve', params: { state: 'early' } } },
        TICK: { actions: 'tick' },
        SLAB_ONLINE: {
          target: 'slabOnline',
          actions: [
            ({ context }) => mm_init(context.machine, context.pc!),
            // the page allocator's state right after mm init is what shutdown must return to
            assign(({ context }) => ({ postBootFree: context.machine.buddy.totalFree() })),
          ],
        },
      },
    },
    slabOnline: {
      entry: { type: 'record', params: { state: 'slabOnline' } },
      on: {
        REQUEST: { actions: { type: 'serve', params: { state: 'slabOnline' } } },
        TICK: { actions: 'tick' },
        LATE_DONE: { target: 'running', actions: assign(({ context }) => ({ postBootMeta: context.pc!.meta_bytes })) },
      },
    },
    running: {
      entry: { type: 'record', params: { state: 'running' } },
      on: {
        REQUEST: { actions: { type: 'serve', params: { state: 'running' } } },
        TICK: { actions: 'tick' },
        SHUTDOWN: { target: 'draining' },
      },
    },
    draining: {
      entry: { type: 'record', params: { state: 'draining' } },
      on: {
        REQUEST: [
          // the machine's own clean-up (leak frees, teardown) still runs while draining
          {
            guard: ({ event }) => event.req.internal === true,
            actions: ({ context, event }) => context.core!.admit(event.req, event.reply),
          },
          { actions: { type: 'serve', params: { state: 'draining' } } },
        ],
        TICK: { actions: 'tick' },
        SHUTDOWN: { target: 'shutdown' },
      },
    },
    shutdown: {
      entry: { type: 'record', params: { state: 'shutdown' } },
      on: {
        REQUEST: { actions: { type: 'serve', params: { state: 'shutdown' } } },
      },
    },
  },
});
