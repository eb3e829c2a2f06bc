/**
 * Files a command writes (--save, --svg, --trace, --html): checked before the run starts, so
 * that a bad path is bad usage (exit 2, naming the path and the reason) rather than a run
 * thrown away at the end; and written afterwards without ever losing the report: each file is
 * written whole to a temporary file beside it and renamed over it, so that a failed write
 * leaves the old file (or none), never a truncated one. A write that still fails is said after
 * the report; the command keeps the run's own failing status, and exits 2 if the run was clean.
 */
import { chmodSync, closeSync, existsSync, openSync, realpathSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError, escapeControl } from './common.ts';

export class Outputs {
  private readonly failures: string[] = [];
  /** the flag that claimed each file, by its real path */
  private readonly claimed = new Map<string, string>();

  constructor(private readonly command: string) {}

  /** The path of `flag`, once it is known to be writable and no other flag's; undefined when the flag is absent. */
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
    const real = realpathSync(path);
    const file = statSync(real).isFile();
    if (!existed) unlinkSync(path);
    // two flags on one file would leave only the last one written (a device or a pipe takes both)
    const other = file ? this.claimed.get(real) : undefined;
    if (other !== undefined)
      throw new UsageError(`${flag} ${shown}: ${other} writes that file too; give each output a file of its own`);
    this.claimed.set(real, flag);
    return path;
  }

  /** Writes through `write` (which writes a whole file at the path it is given); a failure is kept for finish(), not thrown. */
  write(flag: string, path: string | undefined, write: (path: string) => void): void {
    if (path === undefined) return;
    let tmp: string | null = null;
    try {
      const target = existsSync(path) ? realpathSync(path) : resolve(path);
      const st = existsSync(target) ? statSync(target) : null;
      if (st && !st.isFile()) {
        // a device or a pipe (/dev/stdout) is written in place: renaming over it would replace it
        write(target);
        return;
      }
      tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
      write(tmp);
      if (st) chmodSync(tmp, st.mode & 0o7777);
      renameSync(tmp, target);
      tmp = null;
    } catch (e) {
      this.failures.push(
        `${flag} ${escapeControl(path)}: could not write it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the report above is complete`,
      );
    } finally {
      if (tmp !== null && existsSync(tmp)) unlinkSync(tmp);
    }
  }

  /** Says that the file `flag` asked for cannot be written, and why (finish() reports it); nothing when it was not asked for. */
  unwritten(flag: string, path: string | undefined, why: string): void {
    if (path !== undefined) this.failures.push(`${flag} ${escapeControl(path)}: not written: ${why}`);
  }

  /** After the report: says what could not be written; the run's status, or 2 for a clean run whose files failed. */
  finish(status: number): number {
    for (const f of this.failures) process.stderr.write(`percpu-sim ${this.command}: ${f}\n`);
    return this.failures.length && status === 0 ? 2 : status;
  }
}
