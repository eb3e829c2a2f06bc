/**
 * What crosses the actor's boundary: requests from CPUs, replies to them, and the events the
 * actor records. All plain data, so they survive structured cloning between threads.
 */
import type { KernelBugData } from '../kernel/bug.ts';
import type { PcpuTrace } from '../kernel/percpu-internal.ts';
import type { LockName, SleepPoint } from '../kernel/steps.ts';

export interface AllocItem {
  size: number;
  align: number;
  reserved?: boolean;
}

type RequestBody =
  | { kind: 'alloc'; cpu: number; size: number; align: number; reserved?: boolean }
  | { kind: 'alloc_batch'; cpu: number; items: AllocItem[] }
  | { kind: 'free'; cpu: number; ptr: number }
  | { kind: 'free_batch'; cpu: number; ptrs: number[] }
  | { kind: 'init_late'; cpu: number }
  | { kind: 'reclaim'; cpu: number }
  | { kind: 'teardown'; cpu: number };

/** A request; `internal` marks the machine's own clean-up at shutdown. */
export type Request = RequestBody & { internal?: boolean };

export interface AllocOk {
  ok: true;
  ptr: number;
  /** chunk number, -1 for the reserved chunk */
  chunk: number;
  off: number;
  size: number;
}

export interface Failure {
  ok: false;
  /** the kernel's reason (allocation failure) or why the request was refused */
  error: string;
  /** the request was not allowed in the allocator's current state */
  refused?: boolean;
  /** the kernel would have hit BUG(): the typed bug, as data */
  bug?: KernelBugData;
}

export type AllocReply = AllocOk | Failure;
export type Reply =
  AllocReply | { ok: true; batch: AllocReply[] } | { ok: true; freed: number } | { ok: true } | Failure;

export type TaskKind = Request['kind'];

/** Who runs a task: a CPU, or the reclaim worker (cpu -1). */
export const KWORKER = -1;

export type ActorEvent =
  | { seq: number; tick: number; type: 'arrive'; task: number; cpu: number; req: Request }
  | { seq: number; tick: number; type: 'refuse'; task: number; cpu: number; req: Request; error: string }
  | { seq: number; tick: number; type: 'run'; task: number; cpu: number }
  | { seq: number; tick: number; type: 'lock'; task: number; cpu: number; lock: LockName }
  | { seq: number; tick: number; type: 'unlock'; task: number; cpu: number; lock: LockName }
  | { seq: number; tick: number; type: 'block'; task: number; cpu: number; lock: LockName; owner: number }
  | {
      seq: number;
      tick: number;
      type: 'sleep';
      task: number;
      cpu: number;
      at: SleepPoint;
      chunk: number;
      until: number;
    }
  | { seq: number; tick: number; type: 'wake'; task: number; cpu: number }
  | { seq: number; tick: number; type: 'preempt'; task: number; cpu: number; at: string }
  | { seq: number; tick: number; type: 'schedule_work'; task: number; cpu: number; held: LockName[] }
  | { seq: number; tick: number; type: 'done'; task: number; cpu: number; reply: Reply; kind: TaskKind }
  | { seq: number; tick: number; type: 'bug'; task: number; cpu: number; bug: KernelBugData }
  | { seq: number; tick: number; type: 'lockdep'; task: number; cpu: number; lock: LockName; where: string }
  | { seq: number; tick: number; type: 'lifecycle'; task: -1; cpu: number; state: string }
  /** a tracepoint of the allocator (src/kernel/percpu-internal.ts PcpuTrace), recorded when a checker asks for them */
  | { seq: number; tick: number; type: 'kernel'; task: number; cpu: number; trace: PcpuTrace };

/** An event before the actor stamps it. */
export type ActorEventBody = ActorEvent extends infer E
  ? E extends ActorEvent
    ? Omit<E, 'seq' | 'tick'>
    : never
  : never;
