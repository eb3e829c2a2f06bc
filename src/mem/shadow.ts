/**
 * The shadow region: for every granule (2^shadowShift bytes) of physical memory, the tag of
 * the allocation that owns it, or 0. Allocations tag every unit's copy of their area when
 * they are made and clear it when they are freed; the isolation checker reads the tag of each
 * write's target. Physical indexing means one lookup serves the direct map and vmalloc alike.
 *
 * A granule shared by two small areas carries the tag of the one set last; the checker treats
 * a granule as owned by any live allocation that overlaps it.
 */
import { MemError, checkInt } from './errors.ts';
import { H_SHADOW_EPOCH, PAGE_SIZE, readHeader } from './layout.ts';
import type { MemAccess } from './access.ts';

export class Shadow {
  readonly shift: number;
  readonly tags: Int32Array;
  private readonly header: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    const l = readHeader(sab);
    this.shift = l.shadowShift;
    this.tags = new Int32Array(sab, l.shadowOffset, l.shadowEntries);
    this.header = new Int32Array(sab, 0, PAGE_SIZE / 4);
  }

  get enabled(): boolean {
    return this.tags.length > 0;
  }

  get granule(): number {
    return 1 << this.shift;
  }

  /** The tag of the granule holding physical address phys (0: unowned). */
  tagAt(phys: number): number {
    return this.enabled ? Atomics.load(this.tags, Math.floor(phys / this.granule)) : 0;
  }

  /** Tags [phys, phys + len) with `tag` (> 0). */
  setPhys(phys: number, len: number, tag: number): void {
    this.check('shadow_set', phys, len);
    checkInt('shadow_set', 'tag', tag, 1, 0x7fffffff);
    this.write(phys, len, tag);
  }

  /** Clears [phys, phys + len). */
  clearPhys(phys: number, len: number): void {
    this.check('shadow_clear', phys, len);
    this.write(phys, len, 0);
  }

  /** Tags a virtual range page by page through the translation (0 clears; checkers use
   * negative tags for freed areas). */
  setVirt(access: MemAccess, va: number, len: number, tag: number): void {
    checkInt('shadow_set', 'tag', tag, -0x7fffffff, 0x7fffffff);
    const fault = access.checkRange(va, len);
    if (fault < 0)
      throw new MemError('EFAULT', 'shadow_set', 'va', `0x${va.toString(16)} (+${len}) does not translate`);
    let i = 0;
    while (i < len) {
      const p = access.translate(va + i);
      const n = Math.min(len - i, 4096 - ((va + i) & 4095));
      if (this.enabled) this.write(p, n, tag);
      i += n;
    }
  }

  private write(phys: number, len: number, tag: number): void {
    if (!this.enabled || len === 0) return;
    const g0 = Math.floor(phys / this.granule);
    const g1 = Math.floor((phys + len - 1) / this.granule);
    for (let g = g0; g <= g1; g++) Atomics.store(this.tags, g, tag);
    // after the tags: an access check that cached the old ones sees the epoch move
    Atomics.add(this.header, H_SHADOW_EPOCH, 1);
  }

  private check(fn: string, phys: number, len: number): void {
    const max = this.tags.length * this.granule;
    checkInt(fn, 'phys', phys, 0, Math.max(0, max - 1));
    checkInt(fn, 'len', len, 0, max - phys);
  }
}
