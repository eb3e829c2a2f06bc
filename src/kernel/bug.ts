/**
 * Bugs the kernel would BUG() or BUG_ON() on. We throw these instead, after checking, so
 * that nothing is corrupted. They carry a stable `code` and cross threads as plain data.
 */
export type KernelBugCode =
  | 'BUG_ON' // a BUG_ON() in the allocator fired
  | 'PCPU_SETUP_BUG_ON' // a sanity check of pcpu_setup_first_chunk() failed
  | 'BAD_FREE' // free_percpu() of an address that is not the start of a live area
  | 'DOUBLE_FREE' // free_percpu() of an area that is already free
  | 'BAD_STATE' // a call the allocator's lifecycle does not allow (e.g. before setup)
  | 'USE_AFTER_FREE' // a kernel path touched a chunk that was already destroyed
  | 'LIST_CORRUPTION'; // a list walk left its list

export interface KernelBugData {
  name: 'KernelBug';
  code: KernelBugCode;
  message: string;
  check?: string;
}

export class KernelBug extends Error {
  override readonly name = 'KernelBug';
  constructor(
    readonly code: KernelBugCode,
    message: string,
    /** for PCPU_SETUP_BUG_ON and BUG_ON: the condition, as written in the kernel */
    readonly check?: string,
  ) {
    super(message);
  }

  toData(): KernelBugData {
    const d: KernelBugData = { name: 'KernelBug', code: this.code, message: this.message };
    if (this.check !== undefined) d.check = this.check;
    return d;
  }
}

export function BUG_ON(cond: boolean, check: string, detail = ''): void {
  if (cond) throw new KernelBug('BUG_ON', `kernel BUG: BUG_ON(${check})${detail ? `: ${detail}` : ''}`, check);
}
