/** `percpu-sim mutants`: the historical bugs --mutant brings back. */
import { mutantsMain } from './stress-main.ts';
import { type Command, UsageError, parse } from './common.ts';

export const mutants: Command = {
  summary: 'list the historical bugs that --mutant brings back',
  help: `Usage: percpu-sim mutants [--json]

Lists the historical percpu bugs that percpu-sim stress --mutant NAME reintroduces, each with
the bug it recreates and the checkers that catch it. --json prints an array of
{ "name", "bug", "caught_by" }.`,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
    if (positionals.length) throw new UsageError(`mutants takes no arguments, got ${positionals.join(' ')}`);
    return mutantsMain(values.json === true);
  },
};
