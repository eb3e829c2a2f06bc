/**
 * Historical percpu bugs that can be switched back on, one at a time, to show that the
 * checkers find them. Each names the kernel change that fixed it. The allocator code marks
 * the exact place each one changes with `this.mutant(...)`.
 */
export const MUTANTS = {
  'reclaim-drops-mutex': {
    bug: 'pcpu_reclaim() drops pcpu_alloc_mutex before depopulating, so reclaim and a populating allocation share the scratch page array (fixed by 971f3918a5a8 "percpu: fix pcpu_reclaim() locking", 2009)',
    caught_by: ['races', 'locks', 'allocator', 'pages'],
  },
  'extend-stale-walk': {
    bug: 'after extending an area map with pcpu_lock dropped, pcpu_alloc() keeps walking the slot list it was on instead of restarting; a free in the window moves the chunk and the walk runs off its list (fixed by 833af8427be4 "percpu: restructure pcpu_extend_area_map() to fix bugs and improve readability", 2009)',
    caught_by: ['kernel-bug'],
  },
  'destroy-in-use': {
    bug: 'pcpu_alloc() holds pcpu_alloc_mutex only partly and drops it around map extension, so reclaim can destroy the chunk being extended (CVE-2016-4794, fixed by 6710e594f71c "percpu: fix synchronization between synchronous map extension and chunk destruction", 2016)',
    caught_by: ['locks', 'races', 'kernel-bug'],
  },
  'populate-no-zero': {
    bug: 'pcpu_populate_chunk() does not clear the new area, so an allocation sees what the previous user of that memory left',
    caught_by: ['isolation'],
  },
  'populate-fail-keeps-area': {
    bug: 'when population fails, pcpu_alloc() does not give the carved area back: the map keeps an allocated area nobody owns, with pages missing (the 2010 percpu-vm error path, anchors §4 #20)',
    caught_by: ['areas', 'allocator'],
  },
  'free-without-lock': {
    bug: 'free_percpu() changes the area map and slot lists without taking pcpu_lock',
    caught_by: ['locks', 'races'],
  },
} as const;

export type MutantName = keyof typeof MUTANTS;

export const MUTANT_NAMES = Object.keys(MUTANTS) as MutantName[];

export function isMutant(name: string): name is MutantName {
  return Object.hasOwn(MUTANTS, name);
}
