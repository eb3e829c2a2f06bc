/**
 * One run of a workload on the SMP machine, in the kernel's boot order:
 *
 *   1. the boot CPU runs setup_per_cpu_areas() and the boot lines print;
 *   2. the workload's early() runs on the boot CPU before slab is online;
 *   3. slab comes online (mm_init), then percpu_init_late();
 *   4. the secondary CPUs come up and every CPU runs the workload;
 *   5. shutdown frees what the workload left, reports it as leaks, and checks that page
 *      accounting is back where it was after boot.
 *
 * The allocator checker runs after every step of the actor in which pcpu_lock is free.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadWorkload } from './load-workload.ts';
import { runVerify } from './verify.ts';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { leakLine, type ShutdownReport } from '../actor/allocator-actor.ts';
import { type Violation, violationLine } from '../check/violation.ts';
import { Simulation } from '../harness/simulation.ts';
import type { RunObserver } from '../harness/observer.ts';
import { allocatorFingerprint } from '../harness/log-replay.ts';
import type { StaticVar } from '../kernel/image.ts';
import type { MutantName } from '../kernel/mutants.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { BackendKind, FirstChunkKind } from '../kernel/setup.ts';
import { type PercpuStatsReport, percpuStats } from '../kernel/stats.ts';
import type { ActorEvent } from '../sim/events.ts';
import type { PolicyName } from '../sim/policy.ts';
import type { CpuStats } from '../api/per-cpu.ts';
import type { Args, Workload } from '../api/workload.ts';
import type { RunConfig } from '../files/config.ts';
import { runCommand } from '../files/rerun.ts';
import type { CpuTaskResult } from './cpu-protocol.ts';
import { CpuFailure, SmpMachine } from './smp-machine.ts';
import { type ControlOptions, ControlError, Controller } from './controller.ts';
import type { FreeDataPathBug } from '../mem/controlled-access.ts';
import { memoryHash } from '../mem/layout.ts';

export interface RunOptions {
  /** an example name (examples/NAME.ts) or a path to a workload module */
  workload: string;
  /** areas the workload leaves allocated fail the run (they are always reported) */
  failOnLeak?: boolean;
  /** static percpu variables the workload needs in the kernel image, beside the builtin ones */
  staticVars?: Omit<StaticVar, 'offset'>[];
  args?: Args;
  cpus?: number;
  nodes?: number;
  /** the node of every CPU (default: CPUs in blocks per node) */
  cpuToNode?: number[];
  /** node_distance(), nodes x nodes (default: 10 local, 20 remote) */
  distance?: number[][];
  backend?: BackendKind;
  fc?: FirstChunkKind;
  memoryMiB?: number;
  seed: number;
  policy?: PolicyName;
  maxDelay?: number;
  /** the shortest a sleeping step lasts, in scheduler ticks (one tick per event-loop turn) */
  minDelay?: number;
  /** check the allocator's invariants, the lock rules and per-CPU isolation (on by default) */
  check?: boolean;
  /** hold every operation against the 2.6.36 reference model (on with checking) */
  reference?: boolean;
  /** count isolation violations instead of stopping at the first */
  countViolations?: boolean;
  /** report a wake-up under pcpu_lock as a violation, not as the known 2.6.36 dependency */
  strictLocks?: boolean;
  /** a historical bug to bring back */
  mutant?: MutantName;
  /** page allocation failures to inject, as a fraction of calls */
  failRate?: number;
  /** called with the allocator when the workload has run, before teardown and shutdown */
  onRunDone?: (pc: Percpu) => void;
  phaseTimeoutMs?: number;
  /** simulated CPUs per worker thread (default 1; more is M:N, see SmpConfig) */
  cpusPerThread?: number;
  /** `detail` says how far the phase itself is (the run phase: CPUs finished, requests served) */
  onProgress?: (phase: string, done: number, total: number, detail?: string) => void;
  /** watches the run for --trace and --html: events, phases, counters, maps, violations */
  recorder?: RunObserver;
  /** a controlled run: one thread runs at a time, as the policy picks (src/smp/controller.ts) */
  control?: ControlOptions;
  /** data-path bugs to build into free-running CPU threads (tests of the torn-access probe) */
  bugs?: readonly FreeDataPathBug[];
}

/** What a controlled run adds to its report: how it was run, the choices it made, where memory ended. */
export interface ControlledRun {
  policy: ControlOptions['policy'];
  seed: number;
  word: 32 | 64;
  /** every choice, a CPU, -1 for the allocator actor or -2 for an unrelated TLB flush */
  schedule: number[];
  /** scheduling points the CPUs reported */
  points: number;
  /** the physical memory's hash after shutdown */
  memoryHash: string;
  /** the run's options that a replay needs */
  failOnLeak: boolean;
  countViolations: boolean;
  strictLocks: boolean;
}

export interface CpuSummary {
  cpu: number;
  node: number;
  threadId: number;
  ok: boolean;
  error?: string;
  /** the phase did not end on this CPU: timed out, its thread died, or stopped after another failed */
  lost?: 'timeout' | 'died' | 'stopped';
  ms: number;
  stats: CpuStats;
  /** what the workload's run() returned on this CPU */
  result?: unknown;
}

export interface RunReport {
  workload: string;
  seed: number;
  config: RunConfig;
  args: Args;
  /** how CPUs map to worker threads: 1:1, or M:N with this many CPUs per thread */
  threads: { count: number; cpusPerThread: number };
  bootLines: string[];
  dmesg: string[];
  cpus: CpuSummary[];
  stats: PercpuStatsReport | null;
  shutdown: ShutdownReport | null;
  /** everything the run found, in the order first seen */
  violations: Violation[];
  /** wake-ups under pcpu_lock: the kernel's known dependency, unless strict */
  knownLockIssues: number;
  events: number;
  /** every allocator event of the run, in order (left out of the JSON report) */
  log: ActorEvent[];
  /** the allocator's final state (see allocatorFingerprint), to compare with a replay */
  fingerprint: string;
  verdict: 'pass' | 'fail' | 'timeout';
  /** the command that reruns this run */
  rerun: string;
  /** a controlled run's schedule and final memory */
  controlled?: ControlledRun;
}

const ROOT = new URL('../..', import.meta.url);

/** Finds a workload module: an example name, or a path. */
/** A machine or workload the user asked for that cannot be: bad usage, not a failed run. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Every --arg must be one of the workload's arguments, of the type of its default. */
function checkArgs(wl: Workload, given: Args): void {
  const defaults = wl.defaults ?? {};
  const known = Object.entries(defaults);
  const list = known.map(([k, v]) => `${k} (default ${JSON.stringify(v)})`).join(', ') || 'none';
  for (const [k, v] of Object.entries(given)) {
    if (!Object.hasOwn(defaults, k))
      throw new ConfigError(`--arg ${k}: the workload "${wl.name}" has no such argument; its arguments are ${list}`);
    const want = typeof defaults[k];
    if (typeof v !== want)
      throw new ConfigError(
        `--arg ${k} must be a ${want} like its default ${JSON.stringify(defaults[k])}, got ${JSON.stringify(v)}`,
      );
  }
}

/** The largest machine, in MiB (RunConfigSchema's bound on --memory). */
const MAX_MEMORY_MIB = 4096;

/**
 * The memory a run gets without --memory: room for the first chunk and a few more (a unit
 * per CPU each), or what the workload says it needs on this machine, if more. A need no
 * machine can meet is refused here, before anything boots.
 */
function defaultMemory(wl: Workload, cpus: number, nodes: number, args: Args): number {
  const base = Math.max(64, Math.ceil(cpus / 4));
  const need = Math.ceil(wl.config?.memoryMiB?.({ cpus, nodes, args }) ?? 0);
  if (need > MAX_MEMORY_MIB)
    throw new ConfigError(
      `the workload "${wl.name}" needs about ${need} MiB of memory on ${cpus} CPUs, more than the largest machine (--memory ${MAX_MEMORY_MIB}); run it on fewer CPUs or with smaller --arg values`,
    );
  return Math.max(base, need);
}

export function resolveWorkload(name: string): string {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'; // sources, or the dist build
  // an example is a plain name; anything else is a path to the user's own file
  if (/^[a-z][a-z0-9-]*$/.test(name)) {
    const example = new URL(`examples/${name}.${ext}`, ROOT);
    if (existsSync(fileURLToPath(example))) return example.href;
  }
  if (!/\.(ts|mts|js|mjs)$/.test(name))
    throw new ConfigError(
      `no workload "${name}": not an example (${listExamplesHint()}) and not a .ts, .mts, .js or .mjs file`,
    );
  if (!existsSync(name) || !statSync(name).isFile())
    throw new ConfigError(`no workload "${name}": there is no such file`);
  return pathToFileURL(resolve(name)).href;
}

function listExamplesHint(): string {
  return 'see percpu-sim run --help';
}

export async function runWorkload(o: RunOptions): Promise<RunReport> {
  const url = resolveWorkload(o.workload);
  const wl = await loadWorkload(url);
  checkArgs(wl, o.args ?? {});
  const args: Args = { ...wl.defaults, ...(o.args ?? {}) };
  const wc = wl.config ?? {};
  const mutant = o.mutant ?? wc.mutant ?? null;
  const cpus = o.cpus ?? wc.cpus ?? 4;
  const nodes = o.nodes ?? wc.nodes ?? 1;
  if (nodes > cpus) throw new ConfigError(`--nodes ${nodes} is more than --cpus ${cpus}: every node needs a CPU`);
  const config = {
    cpus,
    nodes,
    ...(o.cpuToNode ? { cpuToNode: o.cpuToNode } : {}),
    ...(o.distance ? { distance: o.distance } : {}),
    backend: o.backend ?? wc.backend ?? 'vm',
    fc: o.fc ?? 'embed',
    memoryMiB: o.memoryMiB ?? defaultMemory(wl, cpus, nodes, args),
    policy: o.policy ?? 'random',
    maxDelay: o.maxDelay ?? 4,
    mutant,
    failRate: o.failRate ?? 0,
  } as RunReport['config'];
  const progress = o.onProgress ?? (() => {});
  const total = 5;
  const checking = o.check !== false;
  const rec = o.recorder;

  let sim: Simulation | null = null;
  let smp: SmpMachine | null = null;
  if (o.control && (o.cpusPerThread ?? 1) !== 1)
    throw new ConfigError('a controlled run takes one CPU per worker thread: leave out --cpus-per-thread');
  const controller = o.control ? new Controller(cpus, { ...o.control, seed: o.control.seed ?? o.seed }) : null;
  /** what went wrong before the simulation could take it (a machine that does not boot) */
  const early_: Violation[] = [];
  const now = (): number => sim?.tick ?? 0;
  const add = (v: Omit<Violation, 'tick'>): void => {
    const full = { ...v, tick: now() };
    if (sim) sim.add(full);
    else early_.push(full);
  };
  let timedOut = false;
  let results: CpuTaskResult[] = [];
  let early: unknown;
  let stats: PercpuStatsReport | null = null;
  let shutdown: ShutdownReport | null = null;
  /**
   * A CPU's outcome for one phase: an isolation fault, a barrier that timed out, another
   * error, counted faults. A CPU stopped because another failed (ABORTED), or lost with its
   * thread, adds nothing: the failure that stopped it is the finding.
   */
  const collect = (r: CpuTaskResult, label: string): void => {
    const checkers = sim?.checkers;
    const code = r.error?.code;
    if (r.error?.fault && checkers) checkers.fault(r.error.fault, r.cpu, now());
    else if (code === 'ETIMEDOUT') {
      // a barrier's own bound, the backstop of the machine's watchdog
      timedOut = true;
      add({ checker: 'workers', kind: 'timeout', cpu: r.cpu, message: r.error!.message });
    } else if (!r.ok && !r.lost && code !== 'ABORTED')
      add({
        checker: 'workload',
        kind: 'error',
        cpu: r.cpu,
        message: `${label}: ${r.error!.name}: ${r.error!.message}${r.error!.at ? ` (at ${r.error!.at})` : ''}`,
      });
    if (checkers) for (const f of r.faults) checkers.fault(f, r.cpu, now());
  };

  progress('boot: setup_per_cpu_areas', 0, total);
  try {
    sim = new Simulation(
      {
        seed: o.seed,
        cpus,
        nodes,
        ...(o.cpuToNode ? { cpuToNode: o.cpuToNode } : {}),
        ...(o.distance ? { distance: o.distance } : {}),
        backend: config.backend,
        fc: config.fc,
        memoryMiB: config.memoryMiB,
        shadow: checking,
        mutant,
        failRate: config.failRate,
        ...(o.staticVars ? { staticVars: o.staticVars } : {}),
        policy: config.policy,
        granularity: 'sleep',
        maxDelay: config.maxDelay,
        ...(o.minDelay ? { minDelay: o.minDelay } : {}),
        lockdep: true,
        check: checking,
        strict: o.strictLocks ?? false,
        races: checking,
        count: o.countViolations ?? wc.countViolations ?? false,
        populated: true,
        reference: checking && o.reference !== false,
        drive: 'event-loop',
        keepLog: true,
      },
      { ...(rec ? { observer: rec } : {}), ...(controller ? { clock: controller.clock } : {}) },
    );
  } catch (e) {
    // a machine that cannot boot is a configuration to change, refused before any thread starts
    const name = (e as Error).name;
    if (name === 'KernelBug' || name === 'MemError') throw new ConfigError((e as Error).message);
    throw e;
  }
  try {
    controller?.attach(sim.machine.sab, sim.mm);
    smp = new SmpMachine(sim, {
      ...(o.phaseTimeoutMs ? { phaseTimeoutMs: o.phaseTimeoutMs } : {}),
      ...(o.cpusPerThread ? { cpusPerThread: o.cpusPerThread } : {}),
      ...(controller ? { control: controller } : {}),
      ...(o.bugs?.length && !controller ? { bugs: o.bugs } : {}),
    });
    const pc = sim.pc;

    progress('early: boot CPU before slab', 1, total);
    if (wl.early) {
      const afterSeq = rec?.mark() ?? 0;
      const [r] = await smp.runPhase([0], url, 'early', args);
      rec?.phase({ cpu: 0, name: 'early()', afterSeq, untilSeq: rec.mark() });
      collect(r!, 'cpu 0 (early)');
      early = r!.result;
    }

    progress('slab online, percpu_init_late', 2, total);
    sim.actor.slabOnline();
    const late = await sim.actor.initLate();
    if (!late.ok)
      add({ checker: 'lifecycle', kind: 'late-init', cpu: 0, message: `percpu_init_late failed: ${late.error}` });

    progress(`run: ${cpus} CPUs`, 3, total);
    const runFrom = rec?.mark() ?? 0;
    try {
      results = await smp.runPhase(
        Array.from({ length: cpus }, (_, c) => c),
        url,
        'run',
        args,
        early,
        (finished, served) =>
          progress(`run: ${cpus} CPUs`, 3, total, `${finished} finished, ${served} requests served`),
      );
    } catch (e) {
      // a lost CPU ends the run, but what every CPU did stays in the report
      if (e instanceof CpuFailure) results = e.results;
      throw e;
    } finally {
      for (const r of results) collect(r, `cpu ${r.cpu}`);
    }
    await sim.actor.whenIdle();
    for (let cpu = 0; cpu < cpus; cpu++) rec?.phase({ cpu, name: 'run()', afterSeq: runFrom, untilSeq: rec.mark() });

    if (wl.verify && results.every((r) => r.ok)) {
      // on a thread of its own: a verify() that never returns is stopped, not waited for
      const verified = await runVerify(
        {
          workload: url,
          sab: sim.machine.sab,
          results: results.map((r) => r.result),
          early,
          args,
          nr_cpus: cpus,
          offsets: [...pc.__per_cpu_offset],
          cpuToNode: Array.from({ length: cpus }, (_, c) => sim!.machine.cpuToNode(c)),
          dmesg: [...pc.dmesg],
        },
        o.phaseTimeoutMs ?? 120_000,
      );
      for (const f of verified.failures) add({ checker: 'workload', kind: 'verify', cpu: -1, message: f });
      if (verified.timedOut) {
        timedOut = true;
        add({
          checker: 'workload',
          kind: 'timeout',
          cpu: -1,
          message: `verify() did not finish within ${(o.phaseTimeoutMs ?? 120_000) / 1000} s`,
        });
      }
    }
    stats = percpuStats(pc);
    o.onRunDone?.(pc);
    if (wl.teardown) {
      const afterSeq = rec?.mark() ?? 0;
      const [t] = await smp.runPhase([0], url, 'teardown', args, early);
      rec?.phase({ cpu: 0, name: 'teardown()', afterSeq, untilSeq: rec.mark() });
      collect(t!, 'cpu 0 (teardown)');
    }

    progress('shutdown', 4, total);
    shutdown = await smp.shutdown();
    if (shutdown && !shutdown.pagesRestored)
      add({
        checker: 'pages',
        kind: 'shutdown',
        cpu: -1,
        message: `page accounting: ${shutdown.finalFreePages} free pages after shutdown, ${shutdown.postBootFreePages} after boot`,
      });
    // leaks last: a CPU that stopped early leaves its areas, and its reason above says why, so
    // then they are one line that points at it, not a list that buries it
    if (shutdown && o.failOnLeak && shutdown.leaks.length) {
      const stopped = (sim?.violations ?? []).some((v) => v.checker === 'workload' || v.checker === 'workers');
      const first = shutdown.leaks[0]!;
      if (stopped)
        add({
          checker: 'areas',
          kind: 'leak',
          cpu: first.cpu,
          message: `leak: ${shutdown.leaks.length} area(s) left by a run that stopped early (see the failure above); the first: ${leakLine(first)}`,
        });
      else
        for (const l of shutdown.leaks)
          add({ checker: 'areas', kind: 'leak', cpu: l.cpu, message: `leak: ${leakLine(l)}` });
    }
    progress('done', 5, total);
  } catch (e) {
    if ((e instanceof CpuFailure || e instanceof ControlError) && e.timedOut) timedOut = true;
    const cpu = e instanceof CpuFailure || e instanceof ControlError ? e.cpu : -1;
    add({ checker: 'workers', kind: timedOut ? 'timeout' : 'failed', cpu, message: (e as Error).message });
    await smp?.close();
  }
  const violations = [...(sim?.violations ?? []), ...early_];
  for (const v of violations) rec?.violation(v.tick, violationLine(v), v);

  return {
    workload: wl.name,
    seed: o.seed,
    config,
    args,
    threads: smp ? { count: smp.threads, cpusPerThread: smp.cpusPerThread } : { count: 0, cpusPerThread: 1 },
    bootLines: sim ? [...sim.bootLines] : [],
    dmesg: sim ? [...sim.pc.dmesg] : [],
    cpus: results.map((r) => {
      const s: CpuSummary = {
        cpu: r.cpu,
        node: sim!.machine.cpuToNode(r.cpu),
        threadId: r.threadId,
        ok: r.ok,
        ms: r.ms,
        stats: r.stats,
      };
      if (r.error) s.error = `${r.error.name}: ${r.error.message}`;
      if (r.lost) s.lost = r.lost;
      if (r.ok && r.result !== undefined) s.result = r.result;
      return s;
    }),
    stats,
    shutdown,
    violations,
    knownLockIssues: sim?.checkers?.knownLockIssues.length ?? 0,
    events: sim?.log.length ?? 0,
    log: sim?.log ?? [],
    fingerprint: sim ? allocatorFingerprint(sim.pc) : '',
    // a run that stopped making progress proved nothing either way
    verdict: timedOut ? 'timeout' : violations.length ? 'fail' : 'pass',
    ...(controller && sim
      ? {
          controlled: {
            policy: controller.o.policy,
            seed: controller.o.seed,
            word: controller.word,
            schedule: controller.schedule,
            points: controller.points,
            memoryHash: memoryHash(sim.machine.sab),
            failOnLeak: o.failOnLeak ?? false,
            countViolations: o.countViolations ?? wc.countViolations ?? false,
            strictLocks: o.strictLocks ?? false,
          },
        }
      : {}),
    rerun:
      runCommand({ workload: o.workload, seed: o.seed, config, args, cpusPerThread: o.cpusPerThread }) +
      (checking && o.reference === false ? ' --no-reference' : '') +
      (o.control ? ` --controlled${o.control.word === 32 ? ' --word 32' : ''}` : ''),
  };
}
