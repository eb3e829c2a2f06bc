/** A trace's lines, read from its bytes a block at a time: the trace is never held whole. */
import { Buffer } from 'node:buffer';
import type { ReadBytes } from './trace-text.ts';

export class Lines {
  /** the bytes read and not yet passed; a line is buf[start, end) */
  buf = Buffer.allocUnsafe(1 << 20);
  start = 0;
  end = 0;
  /** the number of the line next() gave (1 for the first) */
  lineNo = 0;
  private have = 0; // bytes in buf
  private next_ = 0; // where the line after this one starts
  private eof = false;

  constructor(private readonly read: ReadBytes) {}

  /**
   * Moves to the next line, without its newline or the carriage return before it; false at
   * the end of the trace. The last line need not end in a newline.
   */
  next(): boolean {
    let at = this.next_;
    for (;;) {
      let nl = at < this.have ? this.buf.indexOf(10, at) : -1;
      if (nl < 0 || nl >= this.have) {
        if (!this.eof) {
          at = this.more(at);
          continue;
        }
        if (at >= this.have) return false;
        nl = this.have;
      }
      this.lineNo++;
      this.start = at;
      this.end = nl > at && this.buf[nl - 1] === 13 ? nl - 1 : nl;
      this.next_ = nl + 1;
      return true;
    }
  }

  /** Reads more behind the unfinished line that starts at `at`; returns where it starts now. */
  private more(at: number): number {
    if (at > 0) {
      this.buf.copy(this.buf, 0, at, this.have);
      this.have -= at;
      at = 0;
    }
    if (this.have === this.buf.length) {
      const grown = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(grown, 0, 0, this.have);
      this.buf = grown;
    }
    const n = this.read(this.buf, this.have);
    if (n > 0) this.have += n;
    else this.eof = true;
    return at;
  }
}
