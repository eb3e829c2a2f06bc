/** The chunk picture: one rectangle per map entry and per populated page, with titles. */
import { describe, expect, it } from 'vitest';
import { allocatorSvg } from '../../src/report/svg.ts';
import { alloc, boot } from '../helpers.ts';

describe('allocator picture', () => {
  it('draws every area of every chunk and every populated page', () => {
    const { pc } = boot();
    alloc(pc, 16, 8);
    alloc(pc, 40000, 8);
    alloc(pc, 100, 8, true);
    const svg = allocatorSvg(pc, 'test');
    const areas = [pc.pcpu_reserved_chunk!, ...pc.chunks.values()].reduce((n, c) => n + c.map_used, 0);
    const pages = [pc.pcpu_reserved_chunk!, ...pc.chunks.values()].reduce(
      (n, c) => n + c.populated.reduce((a, b) => a + b, 0),
      0,
    );
    expect(svg.match(/<rect /g)!.length).toBe(areas + pages);
    expect(svg).toContain('<title>in use: offset 28192, 16 bytes</title>');
    expect(svg).toContain('<title>in use: offset 0, 40000 bytes</title>');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('>reserved</text>');
    expect(svg).toContain('>chunk 1</text>');
  });
});
