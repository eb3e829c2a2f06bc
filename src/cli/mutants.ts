/** `percpu-sim mutants`: the historical bugs --mutant brings back. */
import { MUTANTS, MUTANT_NAMES } from '../kernel/mutants.ts';
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

function mutantsMain(json: boolean): number {
  const list = MUTANT_NAMES.map((name) => ({ name, bug: MUTANTS[name].bug, caught_by: [...MUTANTS[name].caught_by] }));
  if (json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
  else {
    const out = ['Historical percpu bugs that --mutant NAME brings back (percpu-sim stress --mutant NAME):', ''];
    for (const m of list) out.push(`${m.name}`, `  ${m.bug}`, `  caught by: ${m.caught_by.join(', ')}`, '');
    process.stdout.write(out.join('\n'));
  }
  return 0;
}
