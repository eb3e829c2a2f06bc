/**
 * The synchronous driver: runs a kernel path to completion on one thread, with nobody else
 * to interleave. It keeps lock books only to catch a path that takes a lock twice or drops
 * one it does not hold, and runs the reclaim work a path schedules once the path has let go
 * of the CPU, as the workqueue would. This is how trace replay and the kernel tests drive the
 * allocator; the run queue (scheduler.ts) is the concurrent driver.
 */
import { KernelBug } from '../kernel/bug.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { KTask } from '../kernel/steps.ts';
import { MemError } from '../mem/errors.ts';

/**
 * Drives `task`, a kernel path of `pc`, to its end and returns what it returns; then, if it
 * scheduled reclaim, drives pcpu_reclaim() the same way. A lock-book miss is a KernelBug
 * BUG_ON; so is a refusal from the machine, which a correct path never meets. When the path
 * throws, the reclaim it scheduled does not run.
 */
export function runSync<R>(pc: Percpu, task: KTask<R>): R {
  let mutex = false;
  let spin = false;
  let reclaim = false;
  let r = task.next();
  try {
    while (!r.done) {
      const step = r.value;
      if (step.t === 'lock' || step.t === 'unlock') {
        const held = step.lock === 'pcpu_lock' ? spin : mutex;
        if (held === (step.t === 'lock'))
          throw new KernelBug('BUG_ON', `runSync: ${step.t} of ${step.lock} while it is ${held ? 'held' : 'free'}`);
        if (step.lock === 'pcpu_lock') spin = step.t === 'lock';
        else mutex = step.t === 'lock';
      } else if (step.t === 'schedule_work') reclaim = true;
      r = task.next();
    }
  } catch (e) {
    if (e instanceof MemError) throw new KernelBug('BUG_ON', `unexpected refusal from the machine: ${e.message}`);
    throw e;
  }
  if (reclaim) runSync(pc, pc.pcpu_reclaim());
  return r.value;
}
