/**
 * The simulated kernel image's static percpu section: the DEFINE_PER_CPU variables between
 * __per_cpu_start and __per_cpu_end, with their initial values at __per_cpu_load. Boot copies
 * the section into every unit of the first chunk.
 */
import { KERNEL_IMAGE_START } from '../mem/layout.ts';
import { PAGE_SIZE } from './constants.ts';

export interface StaticVar {
  name: string;
  /** offset from __per_cpu_start */
  offset: number;
  size: 1 | 2 | 4 | 8;
  init: number;
}

export interface KernelImage {
  /** __per_cpu_start: page aligned, as the SMP sanity check requires */
  readonly per_cpu_start: number;
  /** __per_cpu_end - __per_cpu_start */
  readonly static_size: number;
  readonly vars: readonly StaticVar[];
  /** __per_cpu_load: the initial contents of the section */
  readonly load: Uint8Array;
}

/** Variables every simulated image defines, when the static area has room for them. */
const BUILTIN_VARS: Omit<StaticVar, 'offset'>[] = [
  { name: 'this_cpu_off', size: 8, init: 0 },
  { name: 'cpu_number', size: 4, init: 0 },
  { name: 'irq_count', size: 4, init: -1 },
  { name: 'softirq_pending', size: 4, init: 0 },
  { name: 'vm_event_pgalloc', size: 8, init: 0 },
  { name: 'boot_marker', size: 4, init: 0x5045_5243 },
];

/**
 * Builds an image whose static percpu section is `static_size` bytes. The builtin variables
 * are laid out first (naturally aligned) as far as they fit; the rest of the section is a
 * deterministic filler, so that the copy into each unit can be verified byte for byte.
 */
export function makeKernelImage(static_size: number, extra: Omit<StaticVar, 'offset'>[] = []): KernelImage {
  const vars: StaticVar[] = [];
  let off = 0;
  for (const v of [...BUILTIN_VARS, ...extra]) {
    const o = Math.ceil(off / v.size) * v.size;
    if (o + v.size > static_size) break;
    vars.push({ ...v, offset: o });
    off = o + v.size;
  }
  const load = new Uint8Array(static_size);
  for (let i = off; i < static_size; i++) load[i] = (i * 131 + 7) & 0xff;
  const dv = new DataView(load.buffer);
  for (const v of vars) writeVar(dv, v.offset, v.size, v.init);
  return { per_cpu_start: KERNEL_IMAGE_START + 16 * PAGE_SIZE, static_size, vars, load };
}

function writeVar(dv: DataView, off: number, size: number, v: number): void {
  if (size === 1) dv.setUint8(off, v & 0xff);
  else if (size === 2) dv.setUint16(off, v & 0xffff, true);
  else if (size === 4) dv.setInt32(off, v | 0, true);
  else dv.setBigInt64(off, BigInt(v), true);
}
