/**
 * --trace FILE and --html FILE: the run as a Chrome trace (Perfetto UI, chrome://tracing) and
 * as a self-contained HTML page. Both paths are checked before the run; both are drawn from one
 * timeline recorder that watches the run.
 */
import { writeFileSync } from 'node:fs';
import { type ReportPage, htmlReport } from '../report/html.ts';
import { TimelineRecorder } from '../report/timeline.ts';
import { chromeTrace } from '../report/trace.ts';
import type { Outputs } from './outputs.ts';

export { HTML_OPTION, TRACE_OPTION, VISUALS_HELP } from './visual-flags.ts';

export class Visuals {
  private readonly tracePath: string | undefined;
  private readonly htmlPath: string | undefined;
  /** the recorder of the run being watched; a campaign starts a fresh one per seed */
  recorder: TimelineRecorder | null = null;

  constructor(
    private readonly out: Outputs,
    values: { trace?: unknown; html?: unknown },
  ) {
    this.tracePath = out.claim('--trace', values.trace);
    this.htmlPath = out.claim('--html', values.html);
  }

  get wanted(): boolean {
    return this.tracePath !== undefined || this.htmlPath !== undefined;
  }

  /** A recorder for the next run (null when neither file was asked for). */
  fresh(): TimelineRecorder | null {
    this.recorder = this.wanted ? new TimelineRecorder({ frames: this.htmlPath !== undefined }) : null;
    return this.recorder;
  }

  /** Says that the files asked for cannot be written, and why. */
  unwritten(why: string): void {
    this.out.unwritten('--trace', this.tracePath, why);
    this.out.unwritten('--html', this.htmlPath, why);
  }

  /** Writes what was asked for, from the last recorder. */
  write(page: Omit<ReportPage, 'timeline'>): void {
    if (!this.recorder) return;
    const timeline = this.recorder.finish();
    this.out.write('--trace', this.tracePath, (p) =>
      writeFileSync(p, JSON.stringify(chromeTrace(timeline, page.title)) + '\n'),
    );
    this.out.write('--html', this.htmlPath, (p) => writeFileSync(p, htmlReport({ ...page, timeline })));
  }
}
