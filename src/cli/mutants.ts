/** `percpu-sim mutants`: the bugs --mutant brings back, historical and invented. */
import { MUTANTS, MUTANT_NAMES } from '../kernel/mutants.ts';
import { type Command, UsageError, parse } from './common.ts';

export const mutants: Command = {
  summary: 'list the bugs that --mutant brings back: historical ones and invented ones',
  help: `Usage: percpu-sim mutants [--json]

Lists the bugs that percpu-sim stress --mutant NAME puts into the allocator, each with the
bug it recreates and the checkers that catch it. A historical bug was in a released kernel
and names the change that fixed it; an invented one no kernel shipped: it breaks one rule in
one place, to show that a checker sees it. --json prints an array of
{ "name", "origin" ("historical" or "invented"), "bug", "caught_by" }.`,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
    if (positionals.length) throw new UsageError(`mutants takes no arguments, got ${positionals.join(' ')}`);
    return mutantsMain(values.json === true);
  },
};

function mutantsMain(json: boolean): number {
  const list = MUTANT_NAMES.map((name) => ({
    name,
    origin: MUTANTS[name].origin,
    bug: MUTANTS[name].bug,
    caught_by: [...MUTANTS[name].caught_by],
  }));
  if (json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
  else {
    const out = ['Bugs that --mutant NAME brings back (percpu-sim stress --mutant NAME):', ''];
    const groups = [
      ['historical', 'Historical: in a released kernel, fixed by the change named'],
      ['invented', 'Invented: no kernel shipped these; each breaks one rule in one place'],
    ] as const;
    for (const [origin, title] of groups) {
      out.push(`${title}:`, '');
      for (const m of list.filter((x) => x.origin === origin))
        out.push(`${m.name}`, `  ${m.bug}`, `  caught by: ${m.caught_by.join(', ')}`, '');
    }
    process.stdout.write(out.join('\n'));
  }
  return 0;
}
