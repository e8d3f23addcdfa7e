/**
 * The run's progress display: on a terminal one redrawn line (bar, steps/s, ETA, last loss); otherwise (CI, pipes,
 * log files) plain lines every 10% of the run or every `plainIntervalMs`, whichever comes first.
 */
export interface ProgressOptions {
  label: string;
  total: number | null;
  /** Steps already done when this process started (a resumed run): the rate counts only this session's steps. */
  startStep?: number;
  isTTY: boolean;
  write: (text: string) => void;
  now?: () => number;
  plainIntervalMs?: number;
  /** Terminal width for the bar. */
  columns?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A metric value in a few characters: 0.0123 → 1.23e-2 style only when small or large. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-2 || abs >= 1e5)) return v.toExponential(2);
  return v.toPrecision(4);
}

export class Progress {
  private total: number | null;
  private step: number;
  private readonly startStep: number;
  private readonly startTime: number;
  private readonly now: () => number;
  private lastDraw = -Infinity;
  private lastPlainTime: number;
  private lastPlainFraction = 0;
  private lineShown = false;
  /** The step of the last plain line written (so that finish() does not repeat it). */
  private lastPlainStep: number;
  private status = '';

  constructor(private readonly options: ProgressOptions) {
    this.now = options.now ?? (() => performance.now());
    this.total = options.total;
    this.startStep = options.startStep ?? 0;
    this.step = this.startStep;
    this.startTime = this.now();
    this.lastPlainTime = this.startTime;
    this.lastPlainStep = this.startStep;
    this.setTotal(options.total);
  }

  setTotal(total: number | null): void {
    this.total = total;
    // A resumed run prints its next plain line at the next 10% mark, not at once.
    if (total) this.lastPlainFraction = Math.floor((this.step / total) * 10) / 10;
  }

  /** Steps per second over this session. */
  get rate(): number {
    const seconds = (this.now() - this.startTime) / 1000;
    return seconds > 0 ? (this.step - this.startStep) / seconds : 0;
  }

  /**
   * Steps per second over about the last 20 s (for the display and the ETA): the first steps include pipeline
   * compilation, and other processes may come and go on a shared machine.
   */
  get recentRate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || last.time - first.time < 1000 || last.step === first.step) return this.rate;
    return ((last.step - first.step) * 1000) / (last.time - first.time);
  }

  private readonly samples: { time: number; step: number }[] = [];

  private sample(t: number): void {
    const n = this.samples.length;
    // Updates closer than 100 ms replace the newest sample: the window holds a few hundred samples at most.
    if (n >= 2 && t - this.samples[n - 2].time < 100) {
      this.samples[n - 1] = { time: t, step: this.step };
      return;
    }
    this.samples.push({ time: t, step: this.step });
    while (this.samples.length > 2 && t - this.samples[1].time > 20_000) this.samples.shift();
  }

  get elapsedSeconds(): number {
    return (this.now() - this.startTime) / 1000;
  }

  /** Moves to `step` (steps completed); `status` is e.g. "loss 1.23e-3". */
  update(step: number, status?: string): void {
    this.step = step;
    if (status !== undefined) this.status = status;
    const t = this.now();
    this.sample(t);
    if (this.options.isTTY) {
      if (t - this.lastDraw >= 100 || step === this.total) this.draw(t);
      return;
    }
    const fraction = this.total ? step / this.total : 0;
    const interval = this.options.plainIntervalMs ?? 15_000;
    if (fraction - this.lastPlainFraction >= 0.1 - 1e-9 || t - this.lastPlainTime >= interval) {
      this.lastPlainFraction = Math.floor(fraction * 10) / 10;
      this.lastPlainTime = t;
      this.lastPlainStep = step;
      this.options.write(`${this.line(false)}\n`);
    }
  }

  /** Prints a message line; on a terminal the bar is redrawn below it. */
  log(message: string): void {
    if (this.options.isTTY && this.lineShown) this.options.write('\r\x1b[K');
    this.options.write(`${message}\n`);
    if (this.options.isTTY && this.lineShown) this.draw(this.now());
  }

  /** The final line (kept on a terminal). */
  finish(): void {
    if (this.options.isTTY) {
      this.draw(this.now());
      this.options.write('\n');
      this.lineShown = false;
    } else if (this.step !== this.lastPlainStep) {
      this.options.write(`${this.line(false)}\n`);
    }
  }

  private draw(t: number): void {
    this.lastDraw = t;
    this.lineShown = true;
    this.options.write(`\r\x1b[K${this.line(true)}`);
  }

  /** The progress text; with a bar on terminals. */
  line(withBar: boolean): string {
    const rate = this.recentRate;
    const parts: string[] = [];
    const total = this.total;
    if (total) {
      const fraction = Math.min(1, this.step / total);
      const count = `${String(this.step).padStart(String(total).length)}/${total}`;
      if (withBar) {
        const width = Math.max(10, Math.min(30, (this.options.columns ?? 100) - 80));
        const filled = Math.round(fraction * width);
        parts.push(`${this.options.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${count}`);
      } else {
        parts.push(`${this.options.label} step ${count}`);
      }
      parts.push(`${(fraction * 100).toFixed(0).padStart(3)}%`);
    } else {
      parts.push(`${this.options.label} step ${this.step}`);
    }
    parts.push(`${rate.toFixed(rate < 10 ? 2 : 1)} steps/s`);
    if (total) {
      const done = this.step >= total;
      parts.push(done ? `took ${formatDuration(this.elapsedSeconds)}` : `ETA ${formatDuration(rate > 0 ? (total - this.step) / rate : NaN)}`);
    } else {
      parts.push(`elapsed ${formatDuration(this.elapsedSeconds)}`);
    }
    if (this.status) parts.push(this.status);
    return parts.join('  ');
  }
}
