/** `percpu-sim stress`: seeded stress, exploration and schedules (the body is in src/cli/stress-main.ts). */
import { STRESS_HELP, STRESS_OPTIONS, stressMain } from './stress-main.ts';
import { type Command, UsageError, flags, parse } from './common.ts';

export const stress: Command = {
  summary: 'seeded stress with every checker on; prints a seed that replays any failure',
  help: STRESS_HELP,
  async run(argv) {
    const { values, positionals } = parse(argv, STRESS_OPTIONS);
    if (positionals.length) throw new UsageError(`stress takes no arguments, got ${positionals.join(' ')}`);
    return stressMain(values, flags);
  },
};
