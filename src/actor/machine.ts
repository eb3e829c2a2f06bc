/**
 * The allocator actor's XState machine, generated from the pure lifecycle
 * (src/sim/lifecycle.ts): one state per lifecycle state, one transition per lifecycle step,
 * and a REQUEST handler in every state that admits the request onto the run queue or refuses
 * it with the lifecycle's reason. XState takes one event at a time from its mailbox, which
 * is what serializes admission; the run queue keeps the admitted tasks, since XState drops
 * events a state does not handle.
 *
 * The rules are a parameter so that a test can hand the actor a lifecycle with a bug in it
 * and show that the checkers see it.
 */
import { assign, setup, type AnyEventObject, type TransitionConfig } from 'xstate';
import { mm_init } from '../kernel/setup.ts';
import type { Machine } from '../mem/machine.ts';
import type { Reply, Request } from '../sim/events.ts';
import {
  admission,
  LIFECYCLE_STATES,
  LIFECYCLE_STEPS,
  type LifecycleState,
  type LifecycleStep,
} from '../sim/lifecycle.ts';
import type { Scheduler } from '../sim/scheduler.ts';

/** The lifecycle an actor follows: the pure functions of src/sim/lifecycle.ts by default. */
export interface LifecycleRules {
  admission: typeof admission;
  steps: typeof LIFECYCLE_STEPS;
}

export const LIFECYCLE: LifecycleRules = { admission, steps: LIFECYCLE_STEPS };

export interface ActorInput {
  machine: Machine;
  runQueue: Scheduler;
}

export interface ActorContext extends ActorInput {
  /** free pages right after mm init: shutdown must get back to exactly this */
  postBootFree: number;
  postBootMeta: number;
}

export type ActorEventIn = { type: LifecycleStep } | { type: 'REQUEST'; req: Request; reply: (r: Reply) => void };

type Ev = ActorEventIn & AnyEventObject;

/** What entering a step's target does besides recording it. */
function stepActions(s: LifecycleStep) {
  if (s === 'BOOT')
    return [
      ({ context }: { context: ActorContext }) =>
        context.runQueue.record({ type: 'lifecycle', task: -1, cpu: 0, state: 'boot' }),
    ];
  if (s === 'SLAB_ONLINE')
    return [
      ({ context }: { context: ActorContext }) => mm_init(context.machine, context.runQueue.pc),
      // the page allocator's state right after mm init is what shutdown must return to
      assign(({ context }: { context: ActorContext }) => ({ postBootFree: context.machine.buddy.totalFree() })),
    ];
  if (s === 'LATE_DONE')
    return [assign(({ context }: { context: ActorContext }) => ({ postBootMeta: context.runQueue.pc.meta_bytes }))];
  return [];
}

export function allocatorMachine(rules: LifecycleRules = LIFECYCLE) {
  const states: Record<string, object> = {};
  for (const state of LIFECYCLE_STATES) {
    const on: Record<string, TransitionConfig<ActorContext, Ev, Ev, never, never, never, never, never, never>[]> = {};
    on.REQUEST = [{ actions: { type: 'serve' as const, params: { state } } }] as never;
    for (const [s, to] of Object.entries(rules.steps[state]) as [LifecycleStep, LifecycleState][])
      on[s] = [{ target: to, actions: stepActions(s) }] as never;
    states[state] = { ...(state === 'off' ? {} : { entry: { type: 'record', params: { state } } }), on };
  }

  return setup({
    types: { context: {} as ActorContext, events: {} as ActorEventIn, input: {} as ActorInput },
    actions: {
      /** admit the request, or refuse it with the state's reason; nothing is dropped */
      serve: ({ context, event, self }, params: { state: LifecycleState }) => {
        if (event.type !== 'REQUEST') return;
        const a = rules.admission(params.state, event.req);
        const q = context.runQueue;
        if (!a.admit) {
          q.record({ type: 'refuse', task: -1, cpu: event.req.cpu, req: event.req, error: a.error });
          event.reply({ ok: false, refused: true, error: a.error });
          return;
        }
        const reply = event.reply;
        q.admit(
          event.req,
          event.req.kind === 'init_late'
            ? (r: Reply) => {
                // the lifecycle moves to running when percpu_init_late() has swapped the maps
                if (r.ok) self.send({ type: 'LATE_DONE' });
                reply(r);
              }
            : reply,
        );
        // a request that moves the lifecycle on (percpu_init_late) takes the machine with it
        if (a.step) self.send({ type: a.step });
      },
      /** the lifecycle goes into the event log as each state is entered */
      record: ({ context }, params: { state: LifecycleState }) => {
        context.runQueue.record({ type: 'lifecycle', task: -1, cpu: 0, state: params.state });
      },
    },
  }).createMachine({
    id: 'percpu',
    context: ({ input }) => ({ ...input, postBootFree: 0, postBootMeta: 0 }),
    initial: 'off',
    states: states as never,
  });
}
