/**
 * --schedule reruns a schedule an exploration printed; a task name the run never offers is an
 * error, not a silent fall back to the default order (which ran CLEAN). In child processes, in
 * a file of their own (see test/check/stress-cli.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const cli = (args: string[]) =>
  spawnSync(process.execPath, ['bin/percpu-sim.mjs', ...args], { encoding: 'utf8', timeout: 90_000 });

const RACE = ['--scenario', 'extend-vs-free', '--mutant', 'extend-stale-walk'];
const FOUND = '0.64,0.64,0.64,0.64,0.64,0.64,0.64,0.64,0.64,1.0,1.0,1.0,1.0,1.0,1.0';

describe('--schedule', () => {
  it('refuses a task on a CPU the machine does not have', () => {
    const r = cli(['stress', '--schedule', '9.9']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      'percpu-sim stress: --schedule: task "9.9" is on CPU 9, and the machine has CPUs 0 to 2 (--cpus 3)\n',
    );
    expect(r.stdout).toBe('');
  });

  it('refuses a task that is not ready at its choice point, and one past the run’s end', () => {
    const early = cli(['stress', ...RACE, '--schedule', '0.64,1.7']);
    expect(early.status).toBe(2);
    expect(early.stderr).toContain(
      'percpu-sim stress: --schedule names a task that was not ready: at choice point 2 the ready tasks were 0.64, 1.0, not "1.7"',
    );
    const long = cli(['stress', ...RACE, '--schedule', `${FOUND},1.0,k.3`]);
    expect(long.status).toBe(2);
    expect(long.stderr).toContain('the run has 15 choice point(s); "1.0,k.3" came after its end');
  });

  it('reruns a schedule an exploration found, to the same violation', () => {
    const r = cli(['stress', ...RACE, '--schedule', FOUND]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('[kernel-bug/LIST_CORRUPTION] ');
  });
});
