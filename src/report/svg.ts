/**
 * A picture of the allocator: one bar per chunk, one unit wide, with every area of its map
 * (allocated areas coloured, free ones pale, the first chunk's static and reserved head dark)
 * and a strip below it for the pages that are populated. Reads the allocator; changes nothing.
 */
import type { PcpuChunk } from '../kernel/chunk.ts';
import { type Percpu, chunkName } from '../kernel/percpu.ts';

const W = 1024;
const BAR = 22;
const STRIP = 4;
const GAP = 16;
const LEFT = 110;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function chunkRow(pc: Percpu, c: PcpuChunk, y: number, slot: number): string {
  const scale = W / pc.pcpu_unit_size;
  const out: string[] = [];
  const label =
    c === pc.pcpu_reserved_chunk ? 'reserved' : c === pc.pcpu_first_chunk ? 'first (0)' : `chunk ${chunkName(c)}`;
  out.push(`<text x="4" y="${y + 15}" class="l">${esc(label)}</text>`);
  out.push(`<text x="4" y="${y + BAR + 10}" class="s">slot ${slot < 0 ? '-' : slot}, ${c.free_size} free</text>`);
  let off = 0;
  for (let i = 0; i < c.map_used; i++) {
    const e = c.map[i]!;
    const size = Math.abs(e);
    const head = i === 0 && (c === pc.pcpu_first_chunk || c === pc.pcpu_reserved_chunk);
    const cls = head ? 'h' : e < 0 ? 'a' : 'f';
    const w = Math.max(size * scale, 0.5);
    out.push(
      `<rect x="${(LEFT + off * scale).toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${BAR}" class="${cls}"><title>${e < 0 ? 'in use' : 'free'}: offset ${off}, ${size} bytes</title></rect>`,
    );
    off += size;
  }
  const pw = (4096 * scale).toFixed(2);
  for (let p = 0; p < pc.pcpu_unit_pages; p++)
    if (c.populated[p])
      out.push(
        `<rect x="${(LEFT + p * 4096 * scale).toFixed(2)}" y="${y + BAR + 2}" width="${pw}" height="${STRIP}" class="p"/>`,
      );
  return out.join('');
}

/** The picture as an SVG document. */
export function allocatorSvg(pc: Percpu, title = 'percpu chunks'): string {
  const rows: { c: PcpuChunk; slot: number }[] = [];
  if (pc.pcpu_reserved_chunk) rows.push({ c: pc.pcpu_reserved_chunk, slot: -1 });
  pc.slotLists().forEach((list, slot) => list.forEach((c) => rows.push({ c, slot })));
  const rowH = BAR + STRIP + GAP;
  const h = 54 + rows.length * rowH;
  const body = rows.map((r, i) => chunkRow(pc, r.c, 48 + i * rowH, r.slot)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${LEFT + W + 10}" height="${h}" font-family="monospace">
<style>.a{fill:#3b7dd8}.f{fill:#e4e8ee}.h{fill:#444}.p{fill:#5aa469}.l{font-size:12px}.s{font-size:9px;fill:#666}</style>
<text x="4" y="18" font-size="14">${esc(title)}: unit ${pc.pcpu_unit_size} bytes, ${rows.length} chunk(s)</text>
<text x="4" y="34" class="s">blue: in use; pale: free; dark: the static (and reserved) head of the first chunk; green strip: populated pages</text>
${body}
</svg>
`;
}
