/**
 * Concurrency coverage: what a run tried, in the manner of interleaving-idiom coverage (Maple,
 * iRoot) rather than of lines. An observer of the event log and of the kernel's shared-object
 * accesses; it never changes anything it sees.
 *
 *  - overlaps:  pairs of kernel functions that were in flight together: one task ran a step
 *               while another was inside its path (holding a lock, waiting for one, sleeping,
 *               or preempted between a drop and a retake);
 *  - contended: the same, where one waited for a lock the other held ("lock waiter<owner");
 *  - orders:    consecutive conflicting accesses to one shared object (same object, two CPUs,
 *               one writes), as "kind first>second", each access as "function:mode"; a pair
 *               is seen in both orders when its reverse is there too;
 *  - sleeps:    each sleep point reached, and reached while another CPU was inside the allocator;
 *  - states:    the lifecycle states entered; failures: the reasons requests failed or were refused.
 *
 * A task is in the function it was last seen in: its entry point (pcpu_alloc, free_percpu,
 * pcpu_reclaim, percpu_init_late) until it reaches one of the functions below it in
 * COVERAGE_FUNCTIONS (a sleep point, a watchpoint or an access names it), and its entry point
 * again once it takes or drops a lock.
 *
 * Every entry is a count, so the tables of seeds, shards and campaigns add up (addCoverage).
 */
import type { AccessMode, KernelAccess, SharedKind } from '../kernel/kcsan.ts';
import type { LockName, SleepPoint } from '../kernel/steps.ts';
import type { ActorEvent, Reply, Request } from '../sim/events.ts';
import { LIFECYCLE_STATES } from '../sim/lifecycle.ts';

/** The kernel functions overlaps are counted between: the entry points, then where they sleep. */
export const COVERAGE_FUNCTIONS = [
  'pcpu_alloc',
  'free_percpu',
  'pcpu_reclaim',
  'percpu_init_late',
  'pcpu_extend_area_map',
  'pcpu_create_chunk',
  'pcpu_populate_chunk',
  'pcpu_depopulate_chunk',
  'pcpu_destroy_chunk',
] as const;

export const SLEEP_POINTS: readonly SleepPoint[] = [
  'pcpu_extend_area_map',
  'pcpu_create_chunk',
  'pcpu_populate_chunk',
  'pcpu_depopulate_chunk',
  'pcpu_destroy_chunk',
];

export interface CoverageTable {
  /** "f|g" (names in order) -> steps one ran while the other was in flight */
  overlaps: Record<string, number>;
  /** "lock waiter<owner" -> times the waiter blocked on the lock the owner held */
  contended: Record<string, number>;
  /** "kind f:mode>g:mode" -> times the second access followed the first on one object */
  orders: Record<string, number>;
  /** sleep point -> [times reached, of those while another CPU was inside the allocator] */
  sleeps: Record<string, [number, number]>;
  /** lifecycle state -> times entered */
  states: Record<string, number>;
  /** reason (numbers as N) -> requests that failed or were refused with it */
  failures: Record<string, number>;
}

export function emptyCoverage(): CoverageTable {
  return { overlaps: {}, contended: {}, orders: {}, sleeps: {}, states: {}, failures: {} };
}

const FUNCTIONS = new Set<string>(COVERAGE_FUNCTIONS);

/** The kernel function a request enters. */
function entry(req: Request): string {
  switch (req.kind) {
    case 'alloc':
    case 'alloc_batch':
      return 'pcpu_alloc';
    case 'free':
    case 'free_batch':
      return 'free_percpu';
    case 'reclaim':
      return 'pcpu_reclaim';
    case 'init_late':
      return 'percpu_init_late';
    case 'teardown':
      return 'pcpu_teardown';
  }
}

interface InFlight {
  cpu: number;
  /** the function it is in, as a name id */
  fn: number;
  /** the function it entered by */
  entry: number;
  /** it has run a step: it is inside its path */
  started: boolean;
}

/** The last write of one object and the reads since (access ids), for the order of conflicting accesses. */
interface ObjectHistory {
  writerCpu: number;
  /** -1: none since the object was made */
  writer: number;
  readerCpus: number[];
  readers: number[];
}

/** Most reads kept between two writes of one object (distinct CPU and function each). */
const READERS = 8;
const KINDS: readonly SharedKind[] = ['map', 'slots', 'index', 'populated', 'vm', 'page', 'scratch'];
const MODES: readonly AccessMode[] = ['read', 'write', 'free'];
/** Ids of names and of accesses stay below this: pairs of them are one number. */
const IDS = 1 << 12;

const bump = (m: Map<string, number>, k: string, by = 1): void => {
  m.set(k, (m.get(k) ?? 0) + by);
};
const bumpN = (m: Map<number, number>, k: number): void => {
  m.set(k, (m.get(k) ?? 0) + 1);
};

/**
 * The recorder works on small numbers (names and accesses interned, pairs packed into one
 * number) because it sees every access of every run; table() turns them into words.
 */
export class CoverageRecorder {
  private readonly tasks = new Map<number, InFlight>();
  /** per chunk (null for the global objects), per kind and page index: the object's history */
  private readonly objects = new Map<object | null, Map<number, ObjectHistory>>();
  private readonly names: string[] = [];
  private readonly nameIds = new Map<string, number>();
  /** access id = name id * 3 + mode */
  private readonly overlaps = new Map<number, number>();
  private readonly contended = new Map<string, number>();
  private readonly orders = new Map<number, number>();
  private readonly sleeps = new Map<string, [number, number]>();
  private readonly states = new Map<string, number>();
  private readonly failures = new Map<string, number>();

  private id(name: string): number {
    let i = this.nameIds.get(name);
    if (i === undefined) {
      i = this.names.length;
      if (i >= IDS / MODES.length) throw new Error(`coverage: more than ${IDS / MODES.length} kernel function names`);
      this.names.push(name);
      this.nameIds.set(name, i);
    }
    return i;
  }

  observe(e: ActorEvent): void {
    switch (e.type) {
      case 'arrive': {
        const fn = this.id(entry(e.req));
        this.tasks.set(e.task, { cpu: e.cpu, fn, entry: fn, started: false });
        break;
      }
      case 'lock':
      case 'unlock': {
        // a function below the entry point sleeps with its locks as they are: a lock taken or
        // dropped is the entry point's again, until an access names another
        const t = this.tasks.get(e.task);
        if (t) t.fn = t.entry;
        break;
      }
      case 'run': {
        const t = this.tasks.get(e.task);
        if (!t) break;
        t.started = true;
        for (const [id, o] of this.tasks)
          if (id !== e.task && o.started && o.cpu !== t.cpu)
            bumpN(this.overlaps, t.fn <= o.fn ? t.fn * IDS + o.fn : o.fn * IDS + t.fn);
        break;
      }
      case 'block': {
        const w = this.tasks.get(e.task);
        const o = this.tasks.get(e.owner);
        if (w && o) bump(this.contended, `${e.lock} ${this.names[w.fn]}<${this.names[o.fn]}`);
        break;
      }
      case 'sleep': {
        const t = this.tasks.get(e.task);
        if (t) t.fn = this.id(e.at);
        const s = this.sleeps.get(e.at) ?? [0, 0];
        s[0]++;
        if (t && [...this.tasks.values()].some((o) => o !== t && o.started && o.cpu !== t.cpu)) s[1]++;
        this.sleeps.set(e.at, s);
        break;
      }
      case 'preempt':
        if (FUNCTIONS.has(e.at)) this.enter(e.task, e.at);
        break;
      case 'done':
        this.tasks.delete(e.task);
        this.failed(e.reply);
        break;
      case 'bug':
        this.tasks.delete(e.task);
        break;
      case 'refuse':
        bump(this.failures, `refused: ${reason(e.error)}`);
        break;
      case 'lifecycle':
        bump(this.states, e.state);
        break;
      default:
        break;
    }
  }

  /** A kernel path's access to a shared object. */
  access(a: KernelAccess): void {
    if (FUNCTIONS.has(a.where)) this.enter(a.task, a.where);
    let perChunk = this.objects.get(a.chunk);
    if (!perChunk) this.objects.set(a.chunk, (perChunk = new Map()));
    const kind = KINDS.indexOf(a.kind);
    const key = kind * (1 << 24) + a.index + 1;
    let h = perChunk.get(key);
    if (!h) perChunk.set(key, (h = { writerCpu: 0, writer: -1, readerCpus: [], readers: [] }));
    const what = this.id(a.where) * 3 + MODES.indexOf(a.mode);
    const base = kind * IDS * IDS;
    if (h.writer >= 0 && h.writerCpu !== a.cpu) bumpN(this.orders, base + h.writer * IDS + what);
    if (a.mode === 'read') {
      const rs = h.readers;
      if (rs.length >= READERS) return;
      for (let i = 0; i < rs.length; i++) if (rs[i] === what && h.readerCpus[i] === a.cpu) return;
      rs.push(what);
      h.readerCpus.push(a.cpu);
      return;
    }
    for (let i = 0; i < h.readers.length; i++)
      if (h.readerCpus[i] !== a.cpu) bumpN(this.orders, base + h.readers[i]! * IDS + what);
    if (a.mode === 'free') perChunk.delete(key);
    else {
      h.writer = what;
      h.writerCpu = a.cpu;
      h.readers = [];
      h.readerCpus = [];
    }
  }

  private enter(task: number, fn: string): void {
    const t = this.tasks.get(task);
    if (t) t.fn = this.id(fn);
  }

  private failed(reply: Reply): void {
    if (!reply.ok) bump(this.failures, reason(reply.error));
    else if ('batch' in reply) for (const r of reply.batch) if (!r.ok) bump(this.failures, reason(r.error));
  }

  /** "function:mode" of an access id. */
  private access_(id: number): string {
    return `${this.names[Math.floor(id / 3)]}:${MODES[id % 3]}`;
  }

  /** The table so far, its keys in order (so that equal tables print alike). */
  table(): CoverageTable {
    const overlaps = new Map<string, number>();
    for (const [k, n] of this.overlaps)
      bump(overlaps, pairKey(this.names[Math.floor(k / IDS)]!, this.names[k % IDS]!), n);
    const orders = new Map<string, number>();
    for (const [k, n] of this.orders) {
      const kind = Math.floor(k / (IDS * IDS));
      const pair = k % (IDS * IDS);
      bump(orders, `${KINDS[kind]} ${this.access_(Math.floor(pair / IDS))}>${this.access_(pair % IDS)}`, n);
    }
    return {
      overlaps: sorted(overlaps),
      contended: sorted(this.contended),
      orders: sorted(orders),
      sleeps: Object.fromEntries([...this.sleeps].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, [...v]])),
      states: sorted(this.states),
      failures: sorted(this.failures),
    };
  }
}

/** "f|g", the two names in order, so that a pair is one key whichever ran first. */
export function pairKey(f: string, g: string): string {
  return f <= g ? `${f}|${g}` : `${g}|${f}`;
}

/** A failure's reason with its numbers as N, so that reasons that differ only in a size count as one. */
function reason(error: string): string {
  return error.replace(/\d+/g, 'N');
}

function sorted(m: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The sum of two tables, as a campaign's is the sum of its seeds'. */
export function addCoverage(a: CoverageTable, b: CoverageTable): CoverageTable {
  const add = (x: Record<string, number>, y: Record<string, number>): Record<string, number> => {
    const m = new Map(Object.entries(x));
    for (const [k, v] of Object.entries(y)) bump(m, k, v);
    return sorted(m);
  };
  const sleeps = new Map<string, [number, number]>(Object.entries(a.sleeps).map(([k, v]) => [k, [v[0], v[1]]]));
  for (const [k, v] of Object.entries(b.sleeps)) {
    const s = sleeps.get(k) ?? [0, 0];
    sleeps.set(k, [s[0] + v[0], s[1] + v[1]]);
  }
  return {
    overlaps: add(a.overlaps, b.overlaps),
    contended: add(a.contended, b.contended),
    orders: add(a.orders, b.orders),
    sleeps: Object.fromEntries([...sleeps].sort(([x], [y]) => (x < y ? -1 : 1))),
    states: add(a.states, b.states),
    failures: add(a.failures, b.failures),
  };
}

/** Pairs of conflicting accesses by how they were seen: "kind f:mode / g:mode", each pair once. */
export function orderPairs(t: CoverageTable): { both: string[]; one: string[] } {
  const both: string[] = [];
  const one: string[] = [];
  for (const k of Object.keys(t.orders)) {
    const sp = k.indexOf(' ');
    const [x, y] = k.slice(sp + 1).split('>') as [string, string];
    const kind = k.slice(0, sp);
    if (x > y && t.orders[`${kind} ${y}>${x}`]) continue; // listed under its other order
    (x === y || t.orders[`${kind} ${y}>${x}`] ? both : one).push(`${kind} ${x} / ${y}`);
  }
  return { both, one };
}

/** Functions only one task runs at a time (one reclaim worker, one late init): no pair with themselves. */
const SINGLE = new Set<string>(['pcpu_reclaim', 'percpu_init_late']);

/** The pairs of COVERAGE_FUNCTIONS a run can reach, each once. */
export function coveragePairs(): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < COVERAGE_FUNCTIONS.length; i++)
    for (let j = i; j < COVERAGE_FUNCTIONS.length; j++)
      if (i !== j || !SINGLE.has(COVERAGE_FUNCTIONS[i]!)) out.push([COVERAGE_FUNCTIONS[i]!, COVERAGE_FUNCTIONS[j]!]);
  return out;
}

/** The pairs of COVERAGE_FUNCTIONS that never overlapped, as "f never overlapped g". */
export function neverOverlapped(t: CoverageTable): string[] {
  return coveragePairs()
    .filter(([f, g]) => !t.overlaps[pairKey(f, g)])
    .map(([f, g]) => (f === g ? `${f} never overlapped another ${f}` : `${f} never overlapped ${g}`));
}

/** The lifecycle states a run enters (it starts in the first, off). */
const STATES = LIFECYCLE_STATES.slice(1);

/** A few lines for a run's or campaign's summary: what was reached, and what never was, in kernel words. */
export function coverageLines(t: CoverageTable, opts: { never?: number } = {}): string[] {
  const allPairs = coveragePairs().length;
  const never = neverOverlapped(t);
  const { both, one } = orderPairs(t);
  const sleeps = SLEEP_POINTS.map((p) => {
    const s = t.sleeps[p];
    return `${p} ${s ? `${s[1]}/${s[0]}` : 'never'}`;
  });
  const states = STATES.filter((s) => !t.states[s]);
  const lines = [
    `coverage: ${allPairs - never.length}/${allPairs} function pairs overlapped, ${Object.keys(t.contended).length} lock contentions (lock waiter<owner); conflicting accesses: ${both.length} pair(s) seen in both orders, ${one.length} in one order only`,
    `  sleep points reached while another CPU was inside the allocator: ${sleeps.join(', ')}`,
    `  lifecycle states ${STATES.length - states.length}/${STATES.length}${states.length ? ` (never ${states.join(', ')})` : ''}; ${Object.keys(t.failures).length} failure reason(s)`,
  ];
  const n = opts.never ?? 0;
  if (n > 0 && never.length)
    lines.push(
      `  never reached: ${never.slice(0, n).join('; ')}${never.length > n ? `; and ${never.length - n} more pair(s)` : ''}`,
    );
  return lines;
}

/** Which lock a contention key names, for a report that groups them. */
export function contendedLock(key: string): LockName {
  return key.slice(0, key.indexOf(' ')) as LockName;
}
