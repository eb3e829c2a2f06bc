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
import type { ShutdownReport } from '../actor/allocator-actor.ts';
import type { Policy } from '../sim/scheduler.ts';
import type { ActorEvent } from '../sim/events.ts';
import { type AllocatorViolation, checkAllocator } from '../check/allocator.ts';
import { IsolationTracker, type IsolationViolation } from '../check/isolation.ts';
import { LockChecker, type LockViolation } from '../check/locks.ts';
import { LockModel } from '../check/lock-model.ts';
import { leakLine } from '../report/run-report.ts';
import { type StaticVar, makeKernelImage } from '../kernel/image.ts';
import { DEFAULT_STATIC_SIZE } from '../kernel/setup.ts';
import { RaceDetector } from '../check/races.ts';
import { AreaOracle } from '../check/areas.ts';
import type { KernelAccess } from '../sim/scheduler.ts';
import type { PcpuChunk } from '../kernel/chunk.ts';
import type { MutantName } from '../kernel/mutants.ts';
import type { Percpu } from '../kernel/percpu.ts';
import type { BackendKind, FirstChunkKind } from '../kernel/setup.ts';
import { type PercpuStatsReport, percpuStats } from '../kernel/stats.ts';
import type { CpuStats } from '../api/per-cpu.ts';
import type { CpuTaskResult } from '../../workers/cpu.ts';
import { CpuFailure, SmpMachine } from './smp-machine.ts';
import { Prng } from '../util/prng.ts';
import { allocatorFingerprint } from '../harness/log-replay.ts';
import type { Args, Workload } from '../api/workload.ts';
import type { TimelineRecorder } from '../report/timeline.ts';

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
  backend?: BackendKind;
  fc?: FirstChunkKind;
  memoryMiB?: number;
  seed: number;
  policy?: Policy;
  maxDelay?: number;
  /** the shortest a sleeping step lasts, in scheduler ticks (one tick per event-loop turn) */
  minDelay?: number;
  /** check the allocator's invariants, the lock rules and per-CPU isolation (on by default) */
  check?: boolean;
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
  onProgress?: (phase: string, done: number, total: number) => void;
  /** watches the run for --trace and --html: events, phases, counters, maps, violations */
  recorder?: TimelineRecorder;
}

export interface CpuSummary {
  cpu: number;
  node: number;
  threadId: number;
  ok: boolean;
  error?: string;
  ms: number;
  stats: CpuStats;
}

export interface RunReport {
  workload: string;
  seed: number;
  config: {
    cpus: number;
    nodes: number;
    backend: BackendKind;
    fc: FirstChunkKind;
    memoryMiB: number;
    policy: Policy;
    maxDelay: number;
    mutant: MutantName | null;
    failRate: number;
  };
  args: Args;
  /** how CPUs map to worker threads: 1:1, or M:N with this many CPUs per thread */
  threads: { count: number; cpusPerThread: number };
  bootLines: string[];
  dmesg: string[];
  cpus: CpuSummary[];
  stats: PercpuStatsReport | null;
  shutdown: ShutdownReport | null;
  violations: AllocatorViolation[];
  lockViolations: LockViolation[];
  /** wake-ups under pcpu_lock: the kernel's known dependency, unless strict */
  knownLockIssues: number;
  isolationViolations: IsolationViolation[];
  failures: string[];
  events: number;
  /** every allocator event of the run, in order (left out of the JSON report) */
  log: ActorEvent[];
  /** the allocator's final state (see allocatorFingerprint), to compare with a replay */
  fingerprint: string;
  verdict: 'pass' | 'fail' | 'timeout';
  replay: string;
}

const ROOT = new URL('../..', import.meta.url);

/** Finds a workload module: an example name, or a path. */
/** A machine or workload the user asked for that cannot be: bad usage, not a failed run. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Every --arg must be one of the workload's arguments, of the type of its default. */
function checkArgs(wl: Workload, given: Args): void {
  const known = Object.entries(wl.defaults);
  const list = known.map(([k, v]) => `${k} (default ${JSON.stringify(v)})`).join(', ') || 'none';
  for (const [k, v] of Object.entries(given)) {
    if (!Object.hasOwn(wl.defaults, k))
      throw new ConfigError(`--arg ${k}: the workload "${wl.name}" has no such argument; its arguments are ${list}`);
    const want = typeof wl.defaults[k];
    if (typeof v !== want)
      throw new ConfigError(
        `--arg ${k} must be a ${want} like its default ${JSON.stringify(wl.defaults[k])}, got ${JSON.stringify(v)}`,
      );
  }
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
    backend: o.backend ?? wc.backend ?? 'vm',
    fc: o.fc ?? 'embed',
    // room for the first chunk and a few more: a unit per CPU each
    memoryMiB: o.memoryMiB ?? Math.max(64, Math.ceil(cpus / 4)),
    policy: o.policy ?? 'random',
    maxDelay: o.maxDelay ?? 4,
    mutant,
    failRate: o.failRate ?? 0,
  } as RunReport['config'];
  const progress = o.onProgress ?? (() => {});
  const total = 5;

  // the race detector sees the scheduler's books through the machine, once it has booted
  const checking = o.check !== false;
  const model = checking
    ? new LockModel({ lockOwners: () => smp.actor.core.lockOwners(), heldBy: (t) => smp.actor.core.heldBy(t) })
    : null;
  const races = model ? new RaceDetector(model) : null;
  const smp: SmpMachine = new SmpMachine({
    machine: { cpus, nodes, memoryBytes: config.memoryMiB * 1024 * 1024, shadow: checking },
    setup: {
      backend: config.backend,
      fc: config.fc,
      // percpu-km chunks are one block: one group, whatever the nodes
      numa_groups: nodes > 1 && config.backend !== 'km',
      mutants: mutant ? [mutant] : [],
      ...(o.staticVars ? { image: makeKernelImage(DEFAULT_STATIC_SIZE, o.staticVars) } : {}),
    },
    actor: {
      seed: o.seed,
      policy: config.policy,
      maxDelay: config.maxDelay,
      ...(o.minDelay ? { minDelay: o.minDelay } : {}),
      record: true,
      ...(races
        ? {
            onAccess: (a: KernelAccess) => races.access(a),
            onDestroy: (t: number, c: number, chunk: PcpuChunk, w: string) => races.destroyed(t, c, chunk, w),
          }
        : {}),
    },
    phaseTimeoutMs: o.phaseTimeoutMs ?? 120_000,
    isolation: { check: o.check !== false, count: o.countViolations ?? wc.countViolations ?? false },
    ...(o.cpusPerThread ? { cpusPerThread: o.cpusPerThread } : {}),
  });
  const failures: string[] = [];
  const rec = o.recorder;
  /** for the timeline (only with a recorder): the tick each checker finding was first seen at, and each failure's */
  const seenAt = new Map<unknown, number>();
  const failureTicks: number[] = [];
  const now = (): number => {
    try {
      return smp.actor.core.tick;
    } catch {
      return 0;
    }
  };
  const fail = (text: string): void => {
    failures.push(text);
    failureTicks.push(now());
  };
  let stampLists: { list: readonly unknown[]; seen: number }[] = [];
  const stamp = (): void => {
    for (const l of stampLists) for (; l.seen < l.list.length; l.seen++) seenAt.set(l.list[l.seen], now());
  };
  let timedOut = false;
  const violations: AllocatorViolation[] = [];
  let locks: LockChecker | null = null;
  let tracker: IsolationTracker | null = null;
  let areas: AreaOracle | null = null;
  const isolation: IsolationViolation[] = [];
  let events = 0;
  let results: CpuTaskResult[] = [];
  let early: unknown;
  let stats: PercpuStatsReport | null = null;
  let shutdown: ShutdownReport | null = null;
  let bootLines: string[] = [];
  /** A CPU's outcome for one phase: an isolation fault, another error, counted faults. */
  const collect = (r: CpuTaskResult, label: string): void => {
    if (r.error?.fault && tracker) isolation.push(tracker.describe(r.error.fault));
    else if (!r.ok) fail(`${label}: ${r.error!.name}: ${r.error!.message}`);
    if (tracker) for (const f of r.faults) isolation.push(tracker.describe(f));
  };

  try {
    progress('boot: setup_per_cpu_areas', 0, total);
    bootLines = smp.boot();
    const pc = smp.actor.pc;
    if (checking) {
      locks = new LockChecker({ pc, strict: o.strictLocks ?? false });
      tracker = new IsolationTracker(pc, o.seed, { groupsByNode: nodes > 1 && config.backend !== 'km' });
      const reserved = pc.pcpu_reserved_chunk
        ? ([pc.pcpu_static_size, pc.pcpu_reserved_chunk_limit] as [number, number])
        : null;
      areas = new AreaOracle({
        offsets: tracker.offsets,
        walk: tracker.walk,
        dynamic: [
          reserved ? reserved[1] : pc.pcpu_static_size,
          pc.pcpu_static_size + pc.pcpu_reserved_size + pc.pcpu_dyn_size,
        ],
        reserved,
      });
    }
    if (rec) {
      rec.attach(pc);
      stampLists = [
        violations,
        isolation,
        locks?.violations,
        model?.faults,
        races?.violations,
        areas?.violations,
        tracker?.violations,
      ].flatMap((list) => (list ? [{ list, seen: 0 }] : []));
    }
    if (o.failRate) smp.machine.buddy.setFaultInjection({ failRate: o.failRate, prng: new Prng(o.seed ^ 0x5eed) });
    smp.actor.onEvent((e: ActorEvent) => {
      events++;
      model?.observe(e);
      races?.observe(e);
      locks?.observe(e);
      tracker?.observe(e);
      areas?.observe(e);
      rec?.observe(e);
      if (rec) stamp();
      if (e.type === 'bug') fail(`kernel BUG on cpu ${e.cpu}: ${e.bug.message}`);
      if (o.check !== false && (e.type === 'sleep' || e.type === 'done') && violations.length < 20) {
        if (smp.actor.core.lockOwners().pcpu_lock === null) for (const v of checkAllocator(pc)) violations.push(v);
      }
    });

    progress('early: boot CPU before slab', 1, total);
    if (wl.early) {
      const afterSeq = rec?.mark() ?? 0;
      const [r] = await smp.runPhase([0], url, 'early', args);
      rec?.phase({ cpu: 0, name: 'early()', afterSeq, untilSeq: rec.mark() });
      collect(r!, 'cpu 0 (early)');
      early = r!.result;
    }

    progress('slab online, percpu_init_late', 2, total);
    smp.actor.slabOnline();
    const late = await smp.actor.initLate();
    if (!late.ok) fail(`percpu_init_late failed: ${late.error}`);

    progress(`run: ${cpus} CPUs`, 3, total);
    const runFrom = rec?.mark() ?? 0;
    results = await smp.runPhase(
      Array.from({ length: cpus }, (_, c) => c),
      url,
      'run',
      args,
      early,
    );
    for (const r of results) collect(r, `cpu ${r.cpu}`);
    await smp.actor.whenIdle();
    for (let cpu = 0; cpu < cpus; cpu++) rec?.phase({ cpu, name: 'run()', afterSeq: runFrom, untilSeq: rec.mark() });

    if (wl.verify && results.every((r) => r.ok)) {
      // on a thread of its own: a verify() that never returns is stopped, not waited for
      for (const f of await runVerify(
        {
          workload: url,
          sab: smp.machine.sab,
          results: results.map((r) => r.result),
          early,
          args,
          nr_cpus: cpus,
          offsets: [...pc.__per_cpu_offset],
          cpuToNode: Array.from({ length: cpus }, (_, c) => smp.machine.cpuToNode(c)),
          dmesg: [...pc.dmesg],
        },
        o.phaseTimeoutMs ?? 120_000,
      ))
        fail(f);
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
      fail(
        `page accounting: ${shutdown.finalFreePages} free pages after shutdown, ${shutdown.postBootFreePages} after boot`,
      );
    progress('done', 5, total);
  } catch (e) {
    if (e instanceof CpuFailure && e.timedOut) timedOut = true;
    fail((e as Error).message);
    await smp.close();
  }
  if (rec) stamp();
  const found = (v: unknown, text: string): void => {
    failures.push(text);
    failureTicks.push(seenAt.get(v) ?? now());
  };
  for (const v of violations) found(v, `allocator invariant ${v.invariant} (chunk ${v.chunk}): ${v.message}`);
  isolation.push(...(tracker?.violations ?? []));
  for (const v of isolation) found(v, `isolation ${v.message}`);
  for (const v of locks?.violations ?? []) found(v, `lock rule ${v.kind}: ${v.message}`);
  for (const v of model?.faults ?? []) found(v, v.message);
  for (const v of races?.violations ?? []) found(v, `race ${v.kind}: ${v.message}`);
  for (const v of areas?.violations ?? []) found(v, `areas ${v.message}`);
  // leaks last: a CPU that stopped early leaves its areas, and its reason above says why
  if (shutdown && o.failOnLeak) for (const l of shutdown.leaks) found(l, `leak: ${leakLine(l)}`);
  failures.forEach((text, i) => rec?.violation(failureTicks[i]!, text));

  const pcDmesg = (() => {
    try {
      return [...smp.actor.pc.dmesg];
    } catch {
      return [];
    }
  })();
  return {
    workload: wl.name,
    seed: o.seed,
    config,
    args,
    threads: { count: smp.threads, cpusPerThread: smp.cpusPerThread },
    bootLines,
    dmesg: pcDmesg,
    cpus: results.map((r) => {
      const s: CpuSummary = {
        cpu: r.cpu,
        node: smp.machine.cpuToNode(r.cpu),
        threadId: r.threadId,
        ok: r.ok,
        ms: r.ms,
        stats: r.stats,
      };
      if (r.error) s.error = `${r.error.name}: ${r.error.message}`;
      return s;
    }),
    stats,
    shutdown,
    violations,
    lockViolations: locks?.violations ?? [],
    knownLockIssues: locks?.known.length ?? 0,
    isolationViolations: isolation,
    failures,
    events,
    log: smp.actor.events,
    fingerprint: (() => {
      try {
        return allocatorFingerprint(smp.actor.pc);
      } catch {
        return '';
      }
    })(),
    // a run that stopped making progress proved nothing either way
    verdict: timedOut ? 'timeout' : failures.length ? 'fail' : 'pass',
    replay: replayCommand(o, config, args),
  };
}

function replayCommand(o: RunOptions, c: RunReport['config'], args: Args): string {
  const parts = [
    'percpu-sim run',
    o.workload,
    `--seed ${o.seed}`,
    `--cpus ${c.cpus}`,
    `--nodes ${c.nodes}`,
    `--backend ${c.backend}`,
    `--memory ${c.memoryMiB}`,
  ];
  if (c.mutant) parts.push(`--mutant ${c.mutant}`);
  if (c.policy !== 'random') parts.push(`--policy ${c.policy}`);
  if (o.cpusPerThread && o.cpusPerThread > 1) parts.push(`--cpus-per-thread ${o.cpusPerThread}`);
  for (const [k, v] of Object.entries(args)) parts.push(`--arg ${k}=${v}`);
  return parts.join(' ');
}
