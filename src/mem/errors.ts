/**
 * Typed errors of the simulated machine. comlink drops the fields of thrown errors, so every
 * error here can turn itself into plain data (toData) and back (fromData).
 */

export type MemErrorCode =
  | 'EINVAL' // an argument is outside its limits
  | 'ENOMEM' // out of memory (only where the kernel returns it as an error, not NULL)
  | 'EFAULT' // an address that does not translate
  | 'EBUSY' // freeing or mapping something in a conflicting state
  | 'ECONFIG'; // a machine configuration that cannot be built

export interface MemErrorData {
  name: 'MemError';
  code: MemErrorCode;
  fn: string;
  arg: string;
  message: string;
}

/** A refused call into src/mem: the message names the function, the argument and the limit. */
export class MemError extends Error {
  override readonly name = 'MemError';
  constructor(
    readonly code: MemErrorCode,
    readonly fn: string,
    readonly arg: string,
    detail: string,
  ) {
    super(`${fn}: ${arg} ${detail}`);
  }

  toData(): MemErrorData {
    return { name: 'MemError', code: this.code, fn: this.fn, arg: this.arg, message: this.message };
  }
}

/** Throws EINVAL unless `n` is an integer in [min, max]. */
export function checkInt(fn: string, arg: string, n: unknown, min: number, max: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n))
    throw new MemError('EINVAL', fn, arg, `must be an integer, got ${String(n)}`);
  if (n < min || n > max) throw new MemError('EINVAL', fn, arg, `must be in [${min}, ${max}], got ${n}`);
  return n;
}

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(n) && (n & (n - 1)) === 0 && n <= 2 ** 30
    ? true
    : n > 2 ** 30 && Number.isInteger(Math.log2(n));
}

/** Throws EINVAL unless `n` is a power of two. */
export function checkPow2(fn: string, arg: string, n: unknown): number {
  if (typeof n !== 'number' || !isPowerOfTwo(n))
    throw new MemError('EINVAL', fn, arg, `must be a power of two, got ${String(n)}`);
  return n;
}
