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
  /** Replicas per task over the window (time-weighted mean), in the problem's task order. */
  replicas: number[];
  /** Replica changes (scale-outs and scale-ins) decided in the window. */
  replicaChanges: number;
}

/** The most windows a run may record. */
export const MAX_WINDOWS = 100_000;

/**
 * Counters of a run: per-request latencies (kept for exact percentiles), the per-window series,
 * the counters of the current control period (per class and per op), and every change of an op's
 * replicas (few: at most one per op per control period or migration).
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
  scaleOuts = 0;
  scaleIns = 0;
  readonly classBusyMs: Float64Array;
  // Per window.
  private wArrivals = new Float64Array(64);
  private wCompleted = new Float64Array(64);
  private wAttained = new Float64Array(64);
  private wRejected = new Float64Array(64);
  private wLatency = new Float64Array(64);
  private wMigrations = new Float64Array(64);
  private wScalings = new Float64Array(64);
  private wBusy: Float64Array;
  private windows = 0;
  private readonly windowMs: number;
  // Since the last control event.
  periodArrivals = 0;
  periodCompleted = 0;
  periodAttained = 0;
  readonly periodBusyMs: Float64Array;
  readonly periodOpArrivals: Float64Array;
  readonly periodOpStarted: Float64Array;
  /** Service time (one replica's) of the executions started in the period, per op. */
  readonly periodOpServiceMs: Float64Array;
  // Replica changes in time order: when, which task, to how many.
  private readonly replicaMs: number[] = [];
  private readonly replicaTask: number[] = [];
  private readonly replicaTo: number[] = [];
  private readonly replicasNow: Int32Array;

  constructor(
    private readonly m: number,
    private readonly n: number,
    windowS: number,
    private readonly slaMs: number,
  ) {
    this.windowMs = windowS * 1e3;
    this.classBusyMs = new Float64Array(m);
    this.periodBusyMs = new Float64Array(m);
    this.periodOpArrivals = new Float64Array(n);
    this.periodOpStarted = new Float64Array(n);
    this.periodOpServiceMs = new Float64Array(n);
    this.replicasNow = new Int32Array(n);
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
      this.wScalings = grow(this.wScalings);
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

  /** An execution reached op i (all its inputs in). */
  opArrival(i: number): void {
    this.periodOpArrivals[i]!++;
  }

  /** An execution of op i started on a replica for serviceMs. */
  opStart(i: number, serviceMs: number): void {
    this.periodOpStarted[i]!++;
    this.periodOpServiceMs[i]! += serviceMs;
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

  /** Replicas per task from `ms` on; logs the tasks whose count changed. */
  replicas(ms: number, servers: Int32Array): void {
    for (let i = 0; i < this.n; i++) {
      if (servers[i] === this.replicasNow[i]) continue;
      this.replicaMs.push(ms);
      this.replicaTask.push(i);
      this.replicaTo.push(servers[i]!);
      this.replicasNow[i] = servers[i]!;
    }
  }

  /** A policy's replica changes: `up` ops scaled out, `down` scaled in. */
  scalings(ms: number, up: number, down: number): void {
    this.scaleOuts += up;
    this.scaleIns += down;
    this.wScalings[this.window(ms)]! += up + down;
  }

  /** Clears the control-period counters. */
  resetPeriod(): void {
    this.periodArrivals = 0;
    this.periodCompleted = 0;
    this.periodAttained = 0;
    this.periodBusyMs.fill(0);
    this.periodOpArrivals.fill(0);
    this.periodOpStarted.fill(0);
    this.periodOpServiceMs.fill(0);
  }

  /** Time-weighted mean replicas per task in each of the first `windows` windows. */
  private replicaSeries(windows: number): number[][] {
    const W = this.windowMs;
    const now = new Float64Array(this.n);
    const out: number[][] = [];
    let k = 0;
    for (let w = 0; w < windows; w++) {
      const start = w * W;
      const end = start + W;
      const area = new Float64Array(this.n);
      const since = new Float64Array(this.n).fill(start);
      for (; k < this.replicaMs.length && this.replicaMs[k]! < end; k++) {
        const i = this.replicaTask[k]!;
        const at = Math.max(start, this.replicaMs[k]!);
        area[i]! += now[i]! * (at - since[i]!);
        since[i] = at;
        now[i] = this.replicaTo[k]!;
      }
      out.push(Array.from(area, (a, i) => (a + now[i]! * (end - since[i]!)) / W));
    }
    return out;
  }

  series(counts: Int32Array): Window[] {
    const replicas = this.replicaSeries(this.windows);
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
        replicas: replicas[w]!,
        replicaChanges: this.wScalings[w]!,
      });
    }
    return out;
  }
}
