/**
 * Files a command writes (--save, --svg): checked before the run starts, so that a bad path is
 * bad usage (exit 2, naming the path and the reason) rather than a run thrown away at the end;
 * and written afterwards without ever losing the report: a write that still fails is said
 * after the report, and the command exits 2.
 */
import { closeSync, existsSync, openSync, statSync, unlinkSync } from 'node:fs';
import { UsageError, escapeControl } from './common.ts';

export class Outputs {
  private readonly failures: string[] = [];

  constructor(private readonly command: string) {}

  /** The path of `flag`, once it is known to be writable; undefined when the flag is absent. */
  claim(flag: string, path: unknown): string | undefined {
    if (path === undefined) return undefined;
    if (typeof path !== 'string' || path === '') throw new UsageError(`${flag} needs a file name`);
    const shown = escapeControl(path);
    if (existsSync(path) && statSync(path).isDirectory())
      throw new UsageError(`${flag} ${shown}: that is a directory; give a file name`);
    const existed = existsSync(path);
    try {
      closeSync(openSync(path, 'a'));
    } catch (e) {
      throw new UsageError(
        `${flag} ${shown}: cannot write there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    if (!existed) unlinkSync(path);
    return path;
  }

  /** Writes through `write`; a failure is kept for finish(), not thrown. */
  write(flag: string, path: string | undefined, write: (path: string) => void): void {
    if (path === undefined) return;
    try {
      write(path);
    } catch (e) {
      this.failures.push(
        `${flag} ${escapeControl(path)}: could not write it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the report above is complete`,
      );
    }
  }

  /** After the report: says what could not be written; the status, or 2 if anything failed. */
  finish(status: number): number {
    for (const f of this.failures) process.stderr.write(`percpu-sim ${this.command}: ${f}\n`);
    return this.failures.length ? 2 : status;
  }
}
