// A one-line progress display on stderr: redrawn in place on a terminal, otherwise an
// occasional plain line so logs stay readable.

export interface ProgressOptions {
  label: string;
  /** Unknown totals show the count and rate only. */
  total?: number;
  unit?: 'bytes' | 'items';
  /** Where to write; defaults to process.stderr. */
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** Overrides the stream's own TTY flag. */
  tty?: boolean;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
}

const BAR_WIDTH = 24;
const TTY_REDRAW_MS = 100;
const PLAIN_LINE_MS = 10_000;

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class ProgressBar {
  private readonly label: string;
  private readonly total: number | undefined;
  private readonly unit: 'bytes' | 'items';
  private readonly stream: { write(s: string): unknown };
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly start: number;
  // The rate counts only progress made by this bar (a resumed download starts above zero).
  private first: number | null = null;
  private current = 0;
  private extra = '';
  private lastDraw = -Infinity;
  private lastPercentStep = -1;
  private finished = false;

  constructor(options: ProgressOptions) {
    this.label = options.label;
    this.total = options.total;
    this.unit = options.unit ?? 'items';
    const stream = options.stream ?? process.stderr;
    this.stream = stream;
    this.tty = options.tty ?? stream.isTTY === true;
    this.now = options.now ?? (() => performance.now());
    this.start = this.now();
  }

  /** Sets the amount done so far (not an increment). */
  update(n: number, extraText?: string): this {
    if (this.finished) return this;
    this.first ??= n;
    this.current = n;
    if (extraText !== undefined) this.extra = extraText;
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw >= TTY_REDRAW_MS) {
        this.lastDraw = t;
        this.stream.write(`\r${this.line()}\x1b[K`);
      }
      return this;
    }
    // Plain output: one line per 10% of a known total, or every few seconds.
    const step = this.total ? Math.floor((10 * n) / this.total) : -1;
    if (step > this.lastPercentStep || t - this.lastDraw >= PLAIN_LINE_MS) {
      if (step > this.lastPercentStep) this.lastPercentStep = step;
      this.lastDraw = t;
      this.stream.write(`${this.line()}\n`);
    }
    return this;
  }

  /** Writes the final line (with the elapsed time) and ends it with a newline. */
  done(extraText?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (extraText !== undefined) this.extra = extraText;
    const elapsed = (this.now() - this.start) / 1000;
    const line = `${this.label} ${this.amount(this.current)} in ${formatDuration(elapsed)}${this.rateText()}${this.extra ? ` ${this.extra}` : ''}`;
    this.stream.write(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`);
  }

  private amount(n: number): string {
    return this.unit === 'bytes' ? formatBytes(n) : `${n} items`;
  }

  private rate(): number {
    const seconds = (this.now() - this.start) / 1000;
    return seconds > 0 ? (this.current - (this.first ?? 0)) / seconds : 0;
  }

  private rateText(): string {
    const r = this.rate();
    if (!(r > 0)) return '';
    return this.unit === 'bytes' ? ` ${formatBytes(r)}/s` : ` ${r.toFixed(r < 10 ? 2 : 1)} it/s`;
  }

  private line(): string {
    const parts = [this.label];
    if (this.total) {
      const fraction = Math.min(1, Math.max(0, this.current / this.total));
      const filled = Math.round(fraction * BAR_WIDTH);
      parts.push(`[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`, `${(100 * fraction).toFixed(1)}%`);
      const total = this.unit === 'bytes' ? formatBytes(this.total) : String(this.total);
      parts.push(`${this.unit === 'bytes' ? formatBytes(this.current) : this.current}/${total}`);
    } else {
      parts.push(this.amount(this.current));
    }
    const rate = this.rateText();
    if (rate) parts.push(rate.trim());
    const r = this.rate();
    if (this.total && r > 0) parts.push(`ETA ${formatDuration((this.total - this.current) / r)}`);
    if (this.extra) parts.push(this.extra);
    return parts.join(' ');
  }
}
