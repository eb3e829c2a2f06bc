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
import type { CpuTask, CpuTaskResult } from './cpu-protocol.ts';
import { workerEntry } from './worker-url.ts';
import { bundle } from './bundle.ts';

export interface SmpConfig {
  /** bound on one phase of one CPU, in ms */
  phaseTimeoutMs?: number;
  /** bound on a barrier wait, in ms */
  barrierTimeoutMs?: number;
  /**
   * Simulated CPUs per worker thread (default 1: every CPU its own thread). More than one
   * (M:N) runs CPUs t*k .. t*k+k-1 as concurrent tasks of thread t, for machines with more
   * CPUs than the host has threads to spare; their work then interleaves at every await.
   */
  cpusPerThread?: number;
  /** a controlled run: who lets the CPU threads go (src/smp/controller.ts); one CPU per thread */
  control?: PhaseControl;
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
  constructor(
    readonly cpu: number,
    message: string,
    /** it stopped making progress: a time-out, not a failure the run found */
    readonly timedOut = false,
  ) {
    super(`cpu ${cpu}: ${message}`);
  }
}

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

  constructor(
    readonly sim: Simulation,
    cfg: SmpConfig = {},
  ) {
    this.machine = sim.machine;
    this.actor = sim.actor;
    // bounds on making no progress, longer when there are more CPU threads than cores
    const load = Math.max(1, this.machine.cpus) / Math.max(1, availableParallelism());
    this.phaseTimeoutMs = Math.round((cfg.phaseTimeoutMs ?? 60_000) * Math.max(1, load));
    this.barrierTimeoutMs = Math.round((cfg.barrierTimeoutMs ?? 20_000) * Math.max(1, load));
    this.heartbeat = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, this.machine.cpus)));
    this.cpusPerThread = Math.max(1, Math.floor(cfg.cpusPerThread ?? 1));
    this.control = cfg.control ?? null;
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
    });
  }

  /**
   * Runs one phase of a workload on the given CPUs at once and waits for all of them.
   * Rejects with CpuFailure when any CPU's thread dies or the phase outlives its bound; a
   * workload error (an oops, a failed check) comes back inside the result instead.
   */
  async runPhase(
    cpus: number[],
    workload: string,
    phase: 'early' | 'run' | 'teardown',
    args: Record<string, number | string | boolean>,
    early?: unknown,
  ): Promise<CpuTaskResult[]> {
    const h = new Int32Array(this.machine.sab, 0, 1024);
    Atomics.store(h, H_BARRIER_COUNT, 0);
    Atomics.store(h, H_BARRIER_PARTIES, cpus.length);
    Atomics.store(h, H_ABORT, 0);
    // CPU threads run plain JavaScript: the workload too
    const module = bundle(workload).href;
    const aborts = cpus.map(() => new AbortController());
    const ports: MessageChannel[] = [];
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
      const run = pool.run(task, { transferList: [ch.port2], signal: aborts[i]!.signal }) as Promise<CpuTaskResult>;
      return this.bounded(cpu, run, aborts[i]!);
    });
    try {
      const all = Promise.all(runs);
      if (this.control) await Promise.all([all, this.control.run(cpus, all)]);
      return await all;
    } catch (e) {
      this.control?.abort();
      Atomics.store(h, H_ABORT, 1);
      for (const a of aborts) a.abort();
      await Promise.allSettled(runs);
      throw e;
    } finally {
      for (const ch of ports) ch.port1.close();
    }
  }

  /**
   * A CPU's phase, watched: it fails only when the CPU makes no progress (its heartbeat stands
   * still and no request of its is being served) for the whole bound, however long it runs.
   */
  private bounded(cpu: number, run: Promise<CpuTaskResult>, abort: AbortController): Promise<CpuTaskResult> {
    return new Promise((resolve, reject) => {
      let beat = Atomics.load(this.heartbeat, cpu);
      let served = this.served;
      let last = Date.now();
      const timer = setInterval(
        () => {
          const now = Atomics.load(this.heartbeat, cpu);
          const waiting = (this.inFlight.get(cpu) ?? 0) > 0 && this.served !== served;
          if (now !== beat || waiting) last = Date.now();
          beat = now;
          served = this.served;
          if (Date.now() - last < this.phaseTimeoutMs) return;
          clearInterval(timer);
          abort.abort();
          reject(
            new CpuFailure(cpu, `timed out: made no progress for ${Math.round(this.phaseTimeoutMs / 1000)} s`, true),
          );
        },
        Math.min(1000, this.phaseTimeoutMs),
      );
      run.then(
        (r) => {
          clearInterval(timer);
          resolve(r);
        },
        (e: Error) => {
          clearInterval(timer);
          reject(e instanceof CpuFailure ? e : new CpuFailure(cpu, `worker thread died: ${e.message}`));
        },
      );
    });
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
