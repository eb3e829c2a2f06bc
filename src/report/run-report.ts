import { leakLine } from '../actor/allocator-actor.ts';
import { type Violation, violationLine } from '../check/violation.ts';
/** The human-readable report of a run: boot lines, per-CPU summary, stats, verdict. */
import { formatPercpuStats } from '../kernel/stats.ts';
import type { RunReport } from '../smp/run.ts';
import { cpuList } from '../smp/smp-machine.ts';

/** 2.6.36 had no such file: the dump is in the format later kernels print, computed from the area maps. */
export const STATS_HEADING =
  '== percpu_stats (the debugfs format of 4.13 and later, CONFIG_PERCPU_STATS; 2.6.36 had none) ==';

export function formatRunReport(r: RunReport, opts: { stats?: boolean } = {}): string {
  const out: string[] = [];
  out.push(
    `percpu-sim run ${r.workload}: ${r.config.cpus} CPUs, ${r.config.nodes} node(s), ${r.config.backend} backend, ${r.config.fc} first chunk, seed ${r.seed}`,
  );
  const t = r.threads;
  out.push(
    t.cpusPerThread > 1
      ? `threads: ${t.count} worker threads, M:N with up to ${t.cpusPerThread} CPUs per thread`
      : `threads: ${t.count} worker threads, 1:1 (one per CPU)`,
  );
  out.push('', '== boot ==', ...r.bootLines);
  const extra = r.dmesg.filter((l) => !r.bootLines.includes(l));
  if (extra.length)
    out.push(
      '',
      '== kernel log ==',
      ...extra.slice(0, 30),
      ...(extra.length > 30 ? [`... ${extra.length - 30} more lines`] : []),
    );

  if (r.cpus.length) {
    out.push('', '== CPUs ==');
    out.push('cpu node thread   allocs  failed    frees      reads     writes      ms  status');
    // a CPU whose run() came back can still be the one a checker caught
    const caught = new Map<number, number>();
    for (const v of r.violations) if (v.cpu >= 0) caught.set(v.cpu, (caught.get(v.cpu) ?? 0) + 1);
    const status = (c: RunReport['cpus'][number]): string => {
      const error = c.error ?? 'failed';
      // an oops or an exception the verdict quotes whole is named here, not printed twice
      if (!c.ok)
        return r.violations.some((v) => v.cpu === c.cpu && v.message.includes(error))
          ? `${error.split(':')[0]} (in the verdict)`
          : error;
      const k = caught.get(c.cpu) ?? 0;
      return k ? `${k} violation${k > 1 ? 's' : ''}` : 'ok';
    };
    for (const c of r.cpus) {
      const s = c.stats;
      // a lost CPU's counts stayed on its thread
      const n = (v: number, w: number) => (c.lost ? '-' : String(v)).padStart(w);
      out.push(
        `${String(c.cpu).padStart(3)} ${String(c.node).padStart(4)} ${String(c.threadId).padStart(6)} ${n(s.allocs, 8)} ${n(s.alloc_failures, 7)} ${n(s.frees, 8)} ${n(s.reads, 10)} ${n(s.writes, 10)} ${c.lost ? '      -' : c.ms.toFixed(0).padStart(7)}  ${status(c)}`,
      );
    }
    const returned = resultLines(r);
    if (returned.length) out.push('', '== run() returned ==', ...returned);
  }
  if (r.stats && opts.stats !== false) out.push('', STATS_HEADING, formatPercpuStats(r.stats));
  if (r.shutdown) {
    const s = r.shutdown;
    out.push('', '== shutdown ==');
    out.push(`leaks freed at shutdown: ${s.leaks.length}`);
    for (const l of s.leaks.slice(0, 10)) out.push(`  ${leakLine(l)}`);
    if (s.leaks.length > 10) out.push(`  ... and ${s.leaks.length - 10} more`);
    out.push(`chunks destroyed: ${s.destroyedChunks}`);
    out.push(
      `free pages: ${s.finalFreePages} (after boot: ${s.postBootFreePages})  metadata: ${s.finalMetaBytes} bytes (after boot: ${s.postBootMetaBytes})`,
    );
  }
  const n = r.violations.length;
  out.push('', `== verdict: ${r.verdict.toUpperCase()}${n ? ` (${n} violation${n > 1 ? 's' : ''})` : ''} ==`);
  for (const v of inOrder(r.violations)) out.push(`  ${violationLine(v)}`);
  out.push(`${r.events} allocator events; replay with: ${r.rerun}`);
  return out.join('\n');
}

/**
 * Violations in the order they happened: what a later check reports (a BUG downstream) comes
 * after its cause even when its checker told it first. Ties keep the checkers' order.
 */
export function inOrder(vs: readonly Violation[]): Violation[] {
  return [...vs].sort((a, b) => a.tick - b.tick);
}

/** One leak, the way kmemleak reports an unreferenced object: what, where, who, when. */

/** The most lines of run() results the text report prints; the JSON report has them all. */
const RESULT_LINES = 16;
/** The longest one result is shown, in characters. */
const RESULT_WIDTH = 100;

/**
 * What run() returned on each CPU, as JSON, CPUs with the same value on one line ("cpus 0-3:
 * ...") so that a thousand CPUs returning the same shape take a line, not a thousand.
 */
export function resultLines(r: Pick<RunReport, 'cpus'>): string[] {
  const groups = new Map<string, number[]>();
  for (const c of r.cpus) {
    if (!('result' in c)) continue;
    const text = JSON.stringify(c.result, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? 'undefined';
    const shown = text.length > RESULT_WIDTH ? `${text.slice(0, RESULT_WIDTH - 3)}...` : text;
    groups.set(shown, [...(groups.get(shown) ?? []), c.cpu]);
  }
  const lines = [...groups].map(([text, cpus]) => `${cpuList(cpus)}: ${text}`);
  if (lines.length <= RESULT_LINES) return lines;
  return [...lines.slice(0, RESULT_LINES), `... ${lines.length - RESULT_LINES} more (--json has every CPU's)`];
}
