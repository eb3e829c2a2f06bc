/**
 * The allocator's scheduler as callers build it: a run queue (run-queue.ts) whose requests
 * run their kernel paths (requests.ts) and keep the ledger of live allocations (ledger.ts),
 * under the policy a configuration names. Every random choice comes from one PRNG seeded from
 * the configuration, so a run is reproducible from its seed and the ticks at which requests
 * arrived (both are in the event log).
 */
import type { Percpu } from '../kernel/percpu.ts';
import type { KTask } from '../kernel/steps.ts';
import { Prng } from '../util/prng.ts';
import type { Reply, Request } from './events.ts';
import { Ledger } from './ledger.ts';
import { ChoicePolicy, type Chooser } from './policies/choice.ts';
import { FifoPolicy } from './policies/fifo.ts';
import { type PctOptions, PctPolicy } from './policies/pct.ts';
import { PosPolicy } from './policies/pos.ts';
import { RandomPolicy } from './policies/random.ts';
import type { Policy, PolicyName } from './policy.ts';
import { requestPath } from './requests.ts';
import { RunQueue, type RunQueueOptions } from './run-queue.ts';

export interface SchedulerOptions extends Omit<RunQueueOptions, 'policy'>, PctOptions {
  seed: number;
  /** default 'random' */
  policy?: PolicyName;
  /** policy 'choice': picks the index of the task to run among the ready ones (by task id) */
  chooser?: Chooser;
}

/** The policy a name stands for, drawing from `prng`. */
function createPolicy(name: PolicyName, prng: Prng, opts: PctOptions & { chooser?: Chooser }): Policy {
  switch (name) {
    case 'fifo':
      return new FifoPolicy();
    case 'random':
      return new RandomPolicy(prng, opts);
    case 'pct':
      return new PctPolicy(prng, opts);
    case 'pos':
      return new PosPolicy(prng, opts);
    case 'choice':
      if (!opts.chooser) throw new Error("scheduler: policy 'choice' needs a chooser");
      return new ChoicePolicy(opts.chooser);
  }
}

export class Scheduler extends RunQueue {
  /** the run's one PRNG, which the policy draws from */
  readonly prng: Prng;
  /** allocations that are live, by pointer */
  readonly live = new Ledger(this);

  constructor(pc: Percpu, opts: SchedulerOptions) {
    const prng = new Prng(opts.seed);
    super(pc, { ...opts, policy: createPolicy(opts.policy ?? 'random', prng, opts) });
    this.prng = prng;
  }

  protected path(req: Request): KTask<Reply> {
    return requestPath(this.pc, req, this.live);
  }
}
