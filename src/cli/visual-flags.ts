/** The flags of --trace and --html (visuals.ts), apart from the reports, so that parsing them loads none. */
export const TRACE_OPTION = { trace: { type: 'string' } } as const;
export const HTML_OPTION = { html: { type: 'string' } } as const;

export const VISUALS_HELP = `  --trace FILE        write the run as a Chrome trace: open it in https://ui.perfetto.dev
                      (Open trace file) or chrome://tracing; a track per CPU, per kernel
                      task lane and per lock, with flows, counters and violations
  --html FILE         write a self-contained HTML report (verdict, each violation's cause,
                      boot layout, chunk maps over time, counters, CPUs, boot lines,
                      percpu_stats); it opens from a file:// URL`;
