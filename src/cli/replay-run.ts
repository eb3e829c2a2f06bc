/** `percpu-sim replay-run`: replay a saved run and say whether it ends the same way. */
import { replayRunMain } from './stress-main.ts';
import { type Command, UsageError, flags, parse } from './common.ts';
import { Outputs } from './outputs.ts';
import { HTML_OPTION, TRACE_OPTION, VISUALS_HELP, Visuals } from './visuals.ts';

export const replayRun: Command = {
  summary: 'replay a run saved with stress --save or run --save, and say whether it ends the same way',
  help: `Usage: percpu-sim replay-run FILE [--json] [--trace FILE] [--html FILE]

Replays a saved run and reports whether it ends the same way.

  - A stress run (percpu-sim stress --save FILE) is rerun from its configuration, seed and,
    for an explored schedule, its choices; the verdict and the first violation must match.
    Exit status: 0 when the replay is clean, 1 when it finds a violation.
  - A run on worker threads (percpu-sim run --save FILE, or stress --workers --save FILE) is
    replayed from its event log without any worker: every allocator reply and the final
    allocator state must match. Exit status: 0 when they do, 1 when they do not.

Options:
${VISUALS_HELP}
  --json              print the result as JSON

Exit status 2 for bad usage or a file that is not a saved run.`,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' }, ...TRACE_OPTION, ...HTML_OPTION });
    if (positionals.length !== 1) throw new UsageError('replay-run needs exactly one FILE');
    const out = new Outputs('replay-run');
    const visuals = new Visuals(out, values);
    return out.finish(await replayRunMain(positionals[0]!, values.json === true, flags, visuals));
  },
};
