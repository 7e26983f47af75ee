/** One window of the time series; requests are counted in the window they arrived in. */
export interface Window {
  startS: number;
  arrivals: number;
  completed: number;
  /** Requests that arrived while the in-flight limit was reached; they count as SLA misses. */
  rejected: number;
  /** Share of this window's requests (completed + rejected) that met the SLA; null when none. */
  slaAttainment: number | null;
  meanLatencyMs: number | null;
  /** Device-busy share per class, in the problem's class order (work counted when it starts). */
  utilisation: number[];
  migrations: number;
}

/** The most windows a run may record. */
export const MAX_WINDOWS = 100_000;

/**
 * Counters of a run: per-request latencies (kept for exact percentiles), the per-window series,
 * and the counters of the current control period.
 */
export class Stats {
  latencies = new Float64Array(1 << 16);
  completed = 0;
  attained = 0;
  rejected = 0;
  arrivals = 0;
  waitSum = 0;
  /** Time of the last completion, ms: the end of the run's span. */
  lastMs = 0;
  migrationCount = 0;
  readonly classBusyMs: Float64Array;
  // Per window.
  private wArrivals = new Float64Array(64);
  private wCompleted = new Float64Array(64);
  private wAttained = new Float64Array(64);
  private wRejected = new Float64Array(64);
  private wLatency = new Float64Array(64);
  private wMigrations = new Float64Array(64);
  private wBusy: Float64Array;
  private windows = 0;
  private readonly windowMs: number;
  // Since the last control event.
  periodArrivals = 0;
  periodCompleted = 0;
  periodAttained = 0;
  readonly periodBusyMs: Float64Array;

  constructor(
    private readonly m: number,
    windowS: number,
    private readonly slaMs: number,
  ) {
    this.windowMs = windowS * 1e3;
    this.classBusyMs = new Float64Array(m);
    this.periodBusyMs = new Float64Array(m);
    this.wBusy = new Float64Array(64 * m);
  }

  private window(ms: number): number {
    const w = Math.min(Math.floor(ms / this.windowMs), MAX_WINDOWS - 1);
    if (w >= this.wArrivals.length) {
      const size = Math.min(Math.max(w + 1, this.wArrivals.length * 2), MAX_WINDOWS);
      const grow = (a: Float64Array, k = 1) => {
        const b = new Float64Array(size * k);
        b.set(a);
        return b;
      };
      this.wArrivals = grow(this.wArrivals);
      this.wCompleted = grow(this.wCompleted);
      this.wAttained = grow(this.wAttained);
      this.wRejected = grow(this.wRejected);
      this.wLatency = grow(this.wLatency);
      this.wMigrations = grow(this.wMigrations);
      this.wBusy = grow(this.wBusy, this.m);
    }
    if (w >= this.windows) this.windows = w + 1;
    return w;
  }

  arrival(ms: number): void {
    this.arrivals++;
    this.periodArrivals++;
    this.wArrivals[this.window(ms)]!++;
  }

  reject(ms: number): void {
    this.rejected++;
    this.wRejected[this.window(ms)]!++;
  }

  busy(ms: number, cls: number, deviceMs: number): void {
    this.classBusyMs[cls]! += deviceMs;
    this.periodBusyMs[cls]! += deviceMs;
    this.wBusy[this.window(ms) * this.m + cls]! += deviceMs;
  }

  complete(arrivalMs: number, ms: number, waitMs: number): void {
    const latency = ms - arrivalMs;
    this.lastMs = ms;
    if (this.completed === this.latencies.length) {
      const l = new Float64Array(this.latencies.length * 2);
      l.set(this.latencies);
      this.latencies = l;
    }
    this.latencies[this.completed++] = latency;
    this.waitSum += waitMs;
    this.periodCompleted++;
    const w = this.window(arrivalMs);
    this.wCompleted[w]!++;
    this.wLatency[w]! += latency;
    if (latency <= this.slaMs) {
      this.attained++;
      this.periodAttained++;
      this.wAttained[w]!++;
    }
  }

  migrations(ms: number, moved: number): void {
    this.migrationCount += moved;
    this.wMigrations[this.window(ms)]! += moved;
  }

  /** Clears the control-period counters. */
  resetPeriod(): void {
    this.periodArrivals = 0;
    this.periodCompleted = 0;
    this.periodAttained = 0;
    this.periodBusyMs.fill(0);
  }

  series(counts: Int32Array): Window[] {
    const out: Window[] = [];
    for (let w = 0; w < this.windows; w++) {
      const done = this.wCompleted[w]!;
      const judged = done + this.wRejected[w]!;
      out.push({
        startS: (w * this.windowMs) / 1e3,
        arrivals: this.wArrivals[w]!,
        completed: done,
        rejected: this.wRejected[w]!,
        slaAttainment: judged > 0 ? this.wAttained[w]! / judged : null,
        meanLatencyMs: done > 0 ? this.wLatency[w]! / done : null,
        utilisation: Array.from(counts, (n, j) =>
          n > 0 ? this.wBusy[w * this.m + j]! / (n * this.windowMs) : 0,
        ),
        migrations: this.wMigrations[w]!,
      });
    }
    return out;
  }
}
