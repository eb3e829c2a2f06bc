/** A real boot log beside 2.6.36 on its machine (src/harness/dmesg.ts), as text and as JSON. */
import type { DmesgComparison } from '../harness/dmesg.ts';

/** The comparison as data: the shape src/files/dmesg.ts checks. */
export function dmesgJson(c: DmesgComparison, file: string) {
  const m = c.machine;
  return {
    file,
    machine: {
      cpus: m.cpus,
      nodes: m.nodes,
      cpu_to_node: m.cpuToNode,
      map_from: m.mapFrom,
      static_size: m.staticSize,
      reserved_size: m.reservedSize,
      dyn_size: m.dynSize,
      atom_size: m.atomSize,
      page_size: m.pageSize,
      first_chunk: m.fc,
      too_far: m.tooFar,
      backend: m.backend,
      memory_mib: m.memoryMiB,
      vmalloc_bytes: m.vmallocBytes,
    },
    command: c.command,
    lines: c.rows.map((r) => ({
      kind: r.kind,
      line: r.line,
      real: r.real,
      simulated: r.simulated,
      status: r.status,
      reasons: r.reasons,
    })),
    percpu_lines: c.percpuLines,
    ignored_lines: c.ignored,
    unexplained: c.unexplained,
  };
}

const FC = { embed: 'embedded', page: 'page by page', fallback: 'embedding failed, then page by page' };

/** Each percpu line of the log above the line 2.6.36 prints, with what tells them apart. */
export function formatDmesgComparison(c: DmesgComparison, file: string): string {
  const m = c.machine;
  const counts = (s: string) => c.rows.filter((r) => r.status === s).length;
  const out = [
    `percpu-sim dmesg ${file}: ${c.percpuLines} percpu line(s) beside 2.6.36 on the same machine; ${c.ignored} other line(s) ignored`,
    `machine: ${m.cpus} possible CPU(s) on ${m.nodes} node(s)${m.nodes > 1 ? (m.mapFrom === 'groups' ? ' (each CPU on the node of its group)' : ' (the log does not say which CPU is where: in blocks)') : ''}, static ${m.staticSize}, reserved ${m.reservedSize}, dynamic ${m.dynSize}, atom ${m.atomSize}, ${m.pageSize >> 10} KiB pages; first chunk ${FC[m.fc]}`,
    `simulated: ${c.command}`,
    '',
  ];
  for (const r of c.rows) {
    const at = r.line === null ? '' : `line ${r.line}`;
    if (r.status === 'same') {
      out.push(`${at.padEnd(10)} same      ${r.real}`);
      continue;
    }
    if (r.real !== null) out.push(`${at.padEnd(10)} real      ${r.real}`);
    if (r.simulated !== null) out.push(`${(r.real === null ? '(none)' : '').padEnd(10)} 2.6.36    ${r.simulated}`);
    for (const why of r.reasons) out.push(`${''.padEnd(10)} ${r.status.padEnd(9)} ${why}`);
  }
  out.push(
    '',
    c.unexplained
      ? `verdict: ${c.unexplained} difference(s) without an explanation`
      : `verdict: no unexplained difference (${counts('same')} same, ${counts('explained')} explained, ${counts('input')} read as input)`,
  );
  return out.join('\n');
}
