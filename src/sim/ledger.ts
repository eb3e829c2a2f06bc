/**
 * The ledger of live allocations: every area a request allocated and no request has freed
 * yet, by pointer. Shutdown frees what is left and reports it as leaked.
 */

export interface LiveAllocation {
  /** the CPU whose request allocated it */
  cpu: number;
  size: number;
  /** the chunk's id, -1 for the reserved chunk */
  chunk: number;
  off: number;
  /** when the allocation returned */
  tick: number;
}

export class Ledger implements Iterable<[number, LiveAllocation]> {
  private readonly byPtr = new Map<number, LiveAllocation>();

  /** @param clock what stamps each allocation with its tick (the run queue) */
  constructor(private readonly clock: { readonly tick: number }) {}

  allocated(ptr: number, a: Omit<LiveAllocation, 'tick'>): void {
    this.byPtr.set(ptr, { ...a, tick: this.clock.tick });
  }

  freed(ptr: number): void {
    this.byPtr.delete(ptr);
  }

  /** [pointer, allocation] in the order they were made */
  [Symbol.iterator](): IterableIterator<[number, LiveAllocation]> {
    return this.byPtr.entries();
  }
}
