/**
 * The machine that runs: the simulated memory, the allocator actor, and one worker thread
 * per CPU. A CPU is a single-thread piscina pool that lives for the whole run, so CPU n is
 * always the same thread. Each phase of a workload is one task per CPU; the task gets a
 * fresh MessageChannel to the actor, over which comlink carries its requests.
 *
 * Every wait is bounded. A worker that throws, exits or hangs fails the run with a message
 * that names the CPU; comlink alone would leave such a call pending forever.
 */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { AllocatorActor, ShutdownReport } from '../actor/allocator-actor.ts';
import type { Simulation } from '../harness/simulation.ts';
import type { Reply, Request } from '../sim/events.ts';
import { H_ABORT, H_BARRIER_COUNT, H_BARRIER_PARTIES } from '../mem/layout.ts';
import type { Machine } from '../mem/machine.ts';
import type { CpuContext } from '../api/per-cpu.ts';
import type { FreeDataPathBug } from '../mem/controlled-access.ts';
import type { CpuTask, CpuTaskResult } from './cpu-protocol.ts';
import { workerEntry } from './worker-url.ts';
import { bundle } from './bundle.ts';

export interface SmpConfig {
  /**
   * Bound on a CPU making no progress in a phase, in ms. Given, it is exact; left out, it is
   * 120 s, longer when there are more CPU threads than cores.
   */
  phaseTimeoutMs?: number;
  /** bound on a barrier wait in which no CPU makes progress, in ms (default: twice the phase's) */
  barrierTimeoutMs?: number;
  /**
   * Simulated CPUs per worker thread (default 1: every CPU its own thread). More than one
   * (M:N) runs CPUs t*k .. t*k+k-1 as concurrent tasks of thread t, for machines with more
   * CPUs than the host has threads to spare; their work then interleaves at every await.
   */
  cpusPerThread?: number;
  /** a controlled run: who lets the CPU threads go (src/smp/controller.ts); one CPU per thread */
  control?: PhaseControl;
  /** data-path bugs to build into the CPU threads when they run free */
  bugs?: readonly FreeDataPathBug[];
}

/** What runs a phase's threads one at a time: it sees each task's context and requests, and drives the phase. */
export interface PhaseControl {
  context(cpu: number, ctx: CpuContext): Partial<CpuContext>;
  request<Q, R>(cpu: number, send: (req: Q) => Promise<R>): (req: Q) => Promise<R>;
  /** drives the phase until its tasks end */
  run(cpus: readonly number[], tasks: Promise<unknown>): Promise<void>;
  abort(): void;
}

/** A phase that did not complete on some CPU: crashed, exited, or timed out. */
export class CpuFailure extends Error {
  override readonly name = 'CpuFailure';
  /** every CPU's outcome of the failed phase, the lost ones included (see SmpMachine.runPhase) */
  results: CpuTaskResult[] = [];
  constructor(
    readonly cpu: number,
    message: string,
    /** timed out (made no progress), its thread died, or it was stopped after another CPU failed */
    readonly how: 'timeout' | 'died' | 'stopped' = 'died',
    /** the message names the CPU itself */
    prefix = true,
  ) {
    super(prefix ? `cpu ${cpu}: ${message}` : message);
  }

  /** it stopped making progress: a time-out, not a failure the run found */
  get timedOut(): boolean {
    return this.how === 'timeout';
  }
}

/** How long the other CPUs of a failed phase get to notice the abort before their threads end. */
const ABORT_GRACE_MS = 2000;

export class SmpMachine {
  readonly machine: Machine;
  readonly actor: AllocatorActor;
  /** one single-thread pool per worker thread; thread t hosts CPUs t*k .. t*k+k-1 */
  private readonly pools = new Map<number, Piscina>();
  readonly cpusPerThread: number;
  private readonly phaseTimeoutMs: number;
  private readonly barrierTimeoutMs: number;
  /** per CPU, a count its API bumps as it works: the watchdog's measure of progress */
  private readonly heartbeat: Int32Array;
  /** requests each CPU has in flight: a CPU waiting on a working allocator is not stuck */
  private readonly inFlight = new Map<number, number>();
  private served = 0;
  private readonly control: PhaseControl | null;
  private readonly bugs: readonly FreeDataPathBug[];

  constructor(
    readonly sim: Simulation,
    cfg: SmpConfig = {},
  ) {
    this.machine = sim.machine;
    this.actor = sim.actor;
    this.cpusPerThread = Math.max(1, Math.floor(cfg.cpusPerThread ?? 1));
    // the default bound is longer when there are more CPU threads than cores; a given one is exact
    const load = Math.max(1, this.threads / Math.max(1, availableParallelism()));
    this.phaseTimeoutMs = cfg.phaseTimeoutMs ?? Math.round(120_000 * load);
    // the watchdog finds a barrier nobody will reach; the barrier's own bound is a backstop
    this.barrierTimeoutMs = cfg.barrierTimeoutMs ?? 2 * this.phaseTimeoutMs;
    // per CPU a heartbeat, then per CPU an at-a-barrier flag (see CpuContext)
    this.heartbeat = new Int32Array(new SharedArrayBuffer(8 * Math.max(1, this.machine.cpus)));
    this.control = cfg.control ?? null;
    this.bugs = cfg.bugs ?? [];
    if (this.control && this.cpusPerThread !== 1)
      throw new Error('a controlled run takes one CPU per worker thread (--cpus-per-thread 1)');
  }

  /** Worker threads the machine uses when every CPU is up. */
  get threads(): number {
    return Math.ceil(this.cpus / this.cpusPerThread);
  }

  get cpus(): number {
    return this.machine.cpus;
  }

  /** Brings a CPU's worker thread up (idempotent). */
  cpuUp(cpu: number): Piscina {
    const thread = Math.floor(cpu / this.cpusPerThread);
    let pool = this.pools.get(thread);
    if (!pool) {
      const e = workerEntry('workers/cpu', true);
      pool = new Piscina({
        filename: e.url.href,
        argv: e.argv,
        minThreads: 1,
        maxThreads: 1,
        // the thread's CPUs run at once: each awaits its requests and barriers
        concurrentTasksPerWorker: this.cpusPerThread,
        maxQueue: 'auto',
        idleTimeout: Infinity,
        atomics: 'async',
      });
      this.pools.set(thread, pool);
    }
    return pool;
  }

  private cpuContext(cpu: number): CpuContext {
    return this.sim.cpuContext(cpu, {
      barrier_timeout_ms: this.barrierTimeoutMs,
      heartbeat: this.heartbeat.buffer as SharedArrayBuffer,
      ...(this.bugs.length ? { bugs: [...this.bugs] } : {}),
    });
  }

  /**
   * Runs one phase of a workload on the given CPUs at once and waits for all of them; a
   * workload error (an oops, a failed check) comes back inside its CPU's result. The first
   * CPU that fails sets the machine's abort flag, so the others leave their barriers and
   * cpu_relax() loops at once instead of waiting for one that will never come.
   *
   * Rejects with CpuFailure when a CPU's thread dies, a CPU makes no progress for the bound,
   * or every CPU still running waits at a barrier while nothing moves for the bound; the
   * other CPUs then get ABORT_GRACE_MS to end, the threads of those that did not are ended,
   * and the failure carries every CPU's result (the lost ones marked `lost`).
   *
   * Tasks carry no abort signal: piscina runs an abortable task alone on its thread, which
   * would run the CPUs of an M:N thread one after another.
   */
  async runPhase(
    cpus: number[],
    workload: string,
    phase: 'early' | 'run' | 'teardown',
    args: Record<string, number | string | boolean>,
    early?: unknown,
    /** told, as CPUs finish and every second, how many have finished and how many requests were served */
    onTick?: (finished: number, served: number) => void,
  ): Promise<CpuTaskResult[]> {
    const h = new Int32Array(this.machine.sab, 0, 1024);
    Atomics.store(h, H_BARRIER_COUNT, 0);
    Atomics.store(h, H_BARRIER_PARTIES, cpus.length);
    Atomics.store(h, H_ABORT, 0);
    // CPU threads run plain JavaScript: the workload too
    const module = bundle(workload, { sourceMap: true }).href;
    const ports: MessageChannel[] = [];
    const results: (CpuTaskResult | undefined)[] = cpus.map(() => undefined);
    /** whether the CPU's task has come back (a timed-out CPU has a result, but its task runs on) */
    const settled = cpus.map(() => false);
    let failure: CpuFailure | null = null;
    let failed: () => void = () => {};
    const onFailure = new Promise<void>((resolve) => (failed = resolve));
    const fail = (i: number, e: CpuFailure): void => {
      Atomics.store(h, H_ABORT, 1);
      results[i] ??= lostResult(e, this.pools.get(this.threadOf(cpus[i]!)));
      if (failure) return;
      failure = e;
      failed();
    };
    const tick = (): void => onTick?.(settled.filter(Boolean).length, this.served);
    const ticker = onTick ? setInterval(tick, 1000).unref() : undefined;
    const runs = cpus.map((cpu, i) => {
      const pool = this.cpuUp(cpu);
      const ch = new MessageChannel();
      ports.push(ch);
      const send = async (req: Request): Promise<Reply> => {
        this.inFlight.set(cpu, (this.inFlight.get(cpu) ?? 0) + 1);
        try {
          return await this.actor.request({ ...req, cpu, internal: false });
        } finally {
          this.inFlight.set(cpu, this.inFlight.get(cpu)! - 1);
          this.served++;
        }
      };
      const api = { request: this.control ? this.control.request(cpu, send) : send };
      Comlink.expose(api, nodeEndpoint(ch.port1));
      const ctx = this.cpuContext(cpu);
      const task: CpuTask = {
        ctx: this.control ? { ...ctx, ...this.control.context(cpu, ctx) } : ctx,
        sab: this.machine.sab,
        port: ch.port2,
        workload: module,
        phase,
        args,
        early,
      };
      return (pool.run(task, { transferList: [ch.port2] }) as Promise<CpuTaskResult>).then(
        (r) => {
          settled[i] = true;
          results[i] ??= r;
          if (!r.ok) Atomics.store(h, H_ABORT, 1);
          tick();
        },
        (e: Error) => {
          settled[i] = true;
          fail(i, new CpuFailure(cpu, `worker thread died: ${e.message}`));
        },
      );
    });
    const all = Promise.all(runs);
    // a controlled run: the controller lets the threads go one at a time; when it gives up (a
    // thread that stopped answering, a schedule that does not fit) that is the phase's failure
    const controlled = this.control?.run(cpus, all).catch((e: Error & { cpu?: number; timedOut?: boolean }) => {
      const at = Math.max(0, cpus.indexOf(e.cpu ?? -1));
      fail(at, new CpuFailure(cpus[at]!, e.message, e.timedOut ? 'timeout' : 'died', false));
    });
    const watchdog = this.watch(cpus, (i) => results[i] !== undefined, fail);
    try {
      await Promise.race([Promise.all([all, controlled]), onFailure]);
      if (!failure) return results as CpuTaskResult[];
      this.control?.abort();
      // the others see the abort at their next barrier or cpu_relax(); a thread that does
      // not come back (a CPU spinning without an await) is ended
      const others = Promise.all(runs.filter((_, i) => !results[i]?.lost));
      await Promise.race([
        others,
        new Promise((r) => setTimeout(r, Math.min(ABORT_GRACE_MS, this.phaseTimeoutMs)).unref()),
      ]);
      const lost = cpus.filter((cpu, i) => {
        if (settled[i]) return false;
        results[i] ??= lostResult(
          new CpuFailure(cpu, 'stopped: another CPU failed the phase', 'stopped'),
          this.pools.get(this.threadOf(cpu)),
        );
        return true;
      });
      await this.endThreads(lost);
      await all;
      const f = failure as CpuFailure;
      f.results = results as CpuTaskResult[];
      throw f;
    } finally {
      clearInterval(watchdog);
      clearInterval(ticker);
      for (const ch of ports) ch.port1.close();
    }
  }

  private threadOf(cpu: number): number {
    return Math.floor(cpu / this.cpusPerThread);
  }

  /** The threads that host these CPUs, ended (their other CPUs with them). */
  private async endThreads(cpus: number[]): Promise<void> {
    const threads = new Set(cpus.map((c) => this.threadOf(c)));
    const pools = [...threads].flatMap((t) => {
      const p = this.pools.get(t);
      this.pools.delete(t);
      return p ? [p] : [];
    });
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }

  /** Every heartbeat of the thread that hosts this CPU: under M:N its CPUs take turns. */
  private threadBeat(cpu: number): number {
    const first = this.threadOf(cpu) * this.cpusPerThread;
    let sum = 0;
    for (let c = first; c < Math.min(first + this.cpusPerThread, this.cpus); c++)
      sum += Atomics.load(this.heartbeat, c);
    return sum;
  }

  /**
   * The phase's watchdog. It fails a phase only when nothing moves for the whole bound,
   * however long the phase runs: a CPU whose thread's heartbeat stands still and none of
   * whose requests is being served, or, when every CPU still running waits at a barrier,
   * the whole machine (a CPU at a barrier is otherwise left to the barrier).
   */
  private watch(
    cpus: number[],
    done: (i: number) => boolean,
    fail: (i: number, e: CpuFailure) => void,
  ): ReturnType<typeof setInterval> {
    const bound = this.phaseTimeoutMs;
    const start = Date.now();
    const watched = cpus.map((cpu) => ({ beat: this.threadBeat(cpu), served: this.served, last: start }));
    const all = { sum: this.progress(), last: start };
    const timer = setInterval(
      () => {
        const now = Date.now();
        const running: number[] = [];
        let waiting = 0;
        for (let i = 0; i < cpus.length; i++) {
          if (done(i)) continue;
          const cpu = cpus[i]!;
          const w = watched[i]!;
          const beat = this.threadBeat(cpu);
          const served = (this.inFlight.get(cpu) ?? 0) > 0 && this.served !== w.served;
          const atBarrier = Atomics.load(this.heartbeat, this.cpus + cpu) === 1;
          if (beat !== w.beat || served || atBarrier) w.last = now;
          w.beat = beat;
          w.served = this.served;
          running.push(i);
          if (atBarrier) waiting++;
          if (now - w.last >= bound) {
            clearInterval(timer);
            fail(i, new CpuFailure(cpu, `timed out: made no progress for ${seconds(bound)}`, 'timeout'));
            return;
          }
        }
        const sum = this.progress();
        if (!running.length || waiting < running.length || sum !== all.sum) {
          all.sum = sum;
          all.last = now;
          return;
        }
        if (now - all.last < bound) return;
        clearInterval(timer);
        const away = cpus.filter((_, i) => !running.includes(i));
        const at = running.map((i) => cpus[i]!);
        fail(
          running[0]!,
          new CpuFailure(
            at[0]!,
            `${cpuList(at)} timed out at a barrier: no CPU made progress for ${seconds(bound)}` +
              (away.length ? `; ${cpuList(away)} never reached it` : ''),
            'timeout',
            false,
          ),
        );
      },
      Math.min(250, bound / 4),
    );
    return timer;
  }

  /** Every CPU's heartbeat and every request served: whether anything at all moved. */
  private progress(): number {
    let sum = this.served;
    for (let c = 0; c < this.cpus; c++) sum += Atomics.load(this.heartbeat, c);
    return sum;
  }

  /** The allocator's shutdown (leaks, page accounting), then every CPU thread is stopped. */
  async shutdown(): Promise<ShutdownReport | null> {
    let report: ShutdownReport | null = null;
    try {
      if (this.actor.state === 'running') report = await this.actor.shutdown();
    } finally {
      await this.close();
    }
    return report;
  }

  /** Stops the worker threads without touching the allocator (also after a failure). */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}

/** "5 s", or "1.5 s": a bound as the user gave it. */
function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** What is known of a CPU whose phase did not end: its thread, and why. */
function lostResult(e: CpuFailure, pool: Piscina | undefined): CpuTaskResult {
  return {
    cpu: e.cpu,
    threadId: pool?.threads[0]?.threadId ?? -1,
    ok: false,
    lost: e.how,
    error: { name: e.name, message: e.message },
    faults: [],
    stats: { allocs: 0, alloc_failures: 0, frees: 0, reads: 0, writes: 0, barriers: 0 },
    ms: 0,
  };
}

/** "cpu 3", "cpus 0, 2-5": CPUs in order, runs of three or more as ranges. */
export function cpuList(cpus: number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    if (j - i >= 2) parts.push(`${sorted[i]}-${sorted[j]}`);
    else for (let k = i; k <= j; k++) parts.push(String(sorted[k]));
    i = j + 1;
  }
  return `${sorted.length === 1 ? 'cpu' : 'cpus'} ${parts.join(', ')}`;
}
