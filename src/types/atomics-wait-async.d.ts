// Atomics.waitAsync is in Node 20 (V8 11.3) but only in TypeScript's ES2024 lib, which would
// also promise APIs Node 20 lacks.
interface Atomics {
  waitAsync(
    typedArray: Int32Array,
    index: number,
    value: number,
    timeout?: number,
  ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}
