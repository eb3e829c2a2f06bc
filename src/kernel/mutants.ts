/**
 * Bugs the allocator can be built with, to show that the checkers find them: the historical
 * percpu bugs (--mutant brings them back, one at a time), bugs no kernel shipped that break
 * one rule in one place, and paths that take their locks wrongly. The allocator code marks
 * the exact place each named one changes with `this.mutant(...)`; a lock bug rewrites the
 * lock steps of its path.
 */
import type { KStep, KTask, LockName } from './steps.ts';

/**
 * The bugs --mutant brings back. A historical one was in a released kernel and names the
 * change that fixed it; an invented one was never shipped and breaks one rule in one place.
 */
export const MUTANTS = {
  'reclaim-drops-mutex': {
    origin: 'historical',
    bug: 'pcpu_reclaim() drops pcpu_alloc_mutex before depopulating, so reclaim and a populating allocation share the scratch page array (fixed by 971f3918a5a8 "percpu: fix pcpu_reclaim() locking", 2009)',
    caught_by: ['races', 'locks', 'allocator', 'pages'],
  },
  'extend-stale-walk': {
    origin: 'historical',
    bug: 'after extending an area map with pcpu_lock dropped, pcpu_alloc() keeps walking the slot list it was on instead of restarting; a free in the window moves the chunk and the walk runs off its list (fixed by 833af8427be4 "percpu: restructure pcpu_extend_area_map() to fix bugs and improve readability", 2009)',
    caught_by: ['kernel-bug'],
  },
  'destroy-in-use': {
    origin: 'historical',
    bug: 'pcpu_alloc() holds pcpu_alloc_mutex only partly and drops it around map extension, so reclaim can destroy the chunk being extended (CVE-2016-4794, fixed by 6710e594f71c "percpu: fix synchronization between synchronous map extension and chunk destruction", 2016)',
    caught_by: ['locks', 'races', 'kernel-bug'],
  },
  'populate-no-zero': {
    origin: 'invented',
    bug: 'pcpu_populate_chunk() does not clear the new area, so an allocation sees what the previous user of that memory left',
    caught_by: ['isolation'],
  },
  'populate-fail-keeps-area': {
    origin: 'invented',
    bug: 'when population fails, pcpu_alloc() does not give the carved area back: the map keeps an allocated area nobody owns, with pages missing (2.6.36 unwinds the pages and frees the area under pcpu_lock)',
    caught_by: ['areas', 'allocator'],
  },
  'free-without-lock': {
    origin: 'invented',
    bug: 'free_percpu() changes the area map and slot lists without taking pcpu_lock',
    caught_by: ['locks', 'races'],
  },
} as const;

export type MutantName = keyof typeof MUTANTS;

export const MUTANT_NAMES = Object.keys(MUTANTS) as MutantName[];

export function isMutant(name: string): name is MutantName {
  return Object.hasOwn(MUTANTS, name);
}

/**
 * Bugs no kernel shipped, each breaking one rule in one place, for showing that a checker
 * reaches that rule. --mutant does not offer them.
 */
export const SEEDED_BUGS = {
  'area-ignores-align': 'pcpu_alloc_area() places an area at the first fit of its size, whatever the alignment asked',
  'meta-before-slab':
    'pcpu_mem_alloc() serves metadata before slab is online, so the early area maps grow past their 128 entries',
  'populate-zeroes-short': "pcpu_populate_chunk() clears the new area in every unit but the last CPU's",
  // behaviour changes that stay safe: only a check against 2.6.36 itself sees them
  'relocate-wrong-end':
    'pcpu_chunk_relocate() puts a chunk that moved up at the back of its new list, one that moved down at the front',
  'walk-slot-too-high': "pcpu_alloc()'s walk starts one slot above the request's",
  'dynamic-from-reserved': 'pcpu_alloc() serves a dynamic request from the reserved chunk when it fits there',
  'pages-from-node-0': "percpu-vm takes every unit's pages from node 0 instead of the unit's CPU's node",
  // the memory-management protocol: page tables, their generation and the frames they map
  'pt-gen-before-clear':
    'unmapping bumps the page-table generation before it clears the entries, so a CPU that refills its TLB in between caches a frame about to go, tagged as current',
  'depopulate-free-before-unmap':
    'pcpu_depopulate_chunk() gives the pages back to the page allocator before it unmaps them, and may sleep between, so page-table entries map free (and soon reused) frames',
} as const;

export type SeededBugName = keyof typeof SEEDED_BUGS;

/** The kernel paths a lock bug can break; it reaches every function the path calls. */
export type KernelPath = 'pcpu_alloc' | 'free_percpu' | 'pcpu_reclaim' | 'pcpu_extend_area_map' | 'percpu_init_late';

/**
 * A path that takes its locks wrongly:
 *  - omit:   it never takes or drops `lock`;
 *  - gap:    it still takes and drops `lock`, but lets go at once each time and takes it again
 *            just before it lets go for real, so its critical sections run in a gap where
 *            nothing sleeps;
 *  - invert: wherever it takes pcpu_alloc_mutex and then pcpu_lock with nothing between, it
 *            takes pcpu_lock first.
 */
export type LockBug = { path: KernelPath; how: 'omit' | 'gap'; lock: LockName } | { path: KernelPath; how: 'invert' };

/** The bugs switched on by name. */
export type BugName = MutantName | SeededBugName;

export const BUG_NAMES: readonly BugName[] = [...MUTANT_NAMES, ...(Object.keys(SEEDED_BUGS) as SeededBugName[])];

/** Anything an allocator can be built to get wrong. */
export type KernelFault = BugName | LockBug;

/** The steps of `task`, with its locks taken as `bug` says. */
export function* with_lock_bug<R>(task: KTask<R>, bug: LockBug): KTask<R> {
  let r = task.next();
  if (bug.how === 'invert') {
    let mutex: KStep | null = null; // a mutex acquire held back until the next step
    while (!r.done) {
      const s = r.value;
      if (s.t === 'lock' && s.lock === 'pcpu_alloc_mutex') mutex = s;
      else if (mutex) {
        if (s.t === 'lock' && s.lock === 'pcpu_lock') {
          yield s;
          yield mutex;
        } else {
          yield mutex;
          yield s;
        }
        mutex = null;
      } else yield s;
      r = task.next();
    }
    return r.value;
  }
  const lock = bug.lock;
  const take: KStep = { t: 'lock', lock };
  const drop: KStep = { t: 'unlock', lock };
  while (!r.done) {
    const s = r.value;
    if ((s.t !== 'lock' && s.t !== 'unlock') || s.lock !== lock) yield s;
    else if (bug.how === 'gap') {
      yield take;
      yield drop;
    }
    r = task.next();
  }
  return r.value;
}
