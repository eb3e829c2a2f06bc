/**
 * A vector clock: one logical time per thread of execution (a lane of the race detector, a
 * thread of the explorer), in the manner of loom's VersionVec. Threads are small dense
 * indices; a thread the clock has not heard of is at 0.
 */
export class VectorClock {
  /** dense: every index below the length is a number */
  private readonly times: number[];

  constructor(times: readonly number[] = []) {
    this.times = [...times];
  }

  /** What this clock knows of `thread`. */
  get(thread: number): number {
    return this.times[thread] ?? 0;
  }

  /** One more event of `thread`. */
  increment(thread: number): void {
    while (this.times.length <= thread) this.times.push(0);
    this.times[thread]!++;
  }

  /** Takes in everything `other` knows (the pointwise maximum). */
  join(other: VectorClock): void {
    const a = this.times;
    const b = other.times;
    for (let i = 0; i < b.length; i++) {
      if (i >= a.length) a.push(b[i]!);
      else if (b[i]! > a[i]!) a[i] = b[i]!;
    }
  }

  clone(): VectorClock {
    return new VectorClock(this.times);
  }

  /**
   * The partial order: -1 when this clock happened before `other` (pointwise at most, not
   * equal), 1 when after, 0 when equal, null when the two are concurrent.
   */
  compare(other: VectorClock): -1 | 0 | 1 | null {
    let less = false;
    let greater = false;
    for (let i = 0, n = Math.max(this.times.length, other.times.length); i < n; i++) {
      const a = this.get(i);
      const b = other.get(i);
      if (a < b) less = true;
      else if (a > b) greater = true;
    }
    if (less && greater) return null;
    return less ? -1 : greater ? 1 : 0;
  }
}
