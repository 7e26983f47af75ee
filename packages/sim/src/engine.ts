import type { PlacementProblem } from '@stitch/planner';
import type { ArrivalSource } from './arrivals.js';
import { EventHeap } from './heap.js';
import type { OpPeriod } from './policy.js';
import type { Random } from './random.js';
import { Stats } from './stats.js';

// Event kinds, packed with the task index as kind | task << 3.
const ARRIVAL = 0;
const FINISH = 1;
const DELIVER = 2;
const CONTROL = 3;
const READY = 4;

/** Multiplicative noise on service times: none, exponential (mean 1) or lognormal (mean 1). */
export type NoiseKind = 0 | 1 | 2;

export interface EngineConfig {
  problem: PlacementProblem;
  slaMs: number;
  rng: Random;
  source: ArrivalSource;
  /** Arrivals stop after this many requests or at this time (seconds), whichever comes first. */
  requests: number;
  durationS: number;
  noise: NoiseKind;
  lognormalSigma: number;
  /** [shape × n + task] service-time multiplier. */
  shapeScale: Float64Array;
  windowS: number;
  controlS: number;
  maxInFlight: number;
  migrationMs: number;
  /** Called at each control event; it may `migrate` and `rescale` the engine. */
  control: (engine: Engine, nowMs: number) => void;
  /** Replicas per task for an assignment (on a migration). */
  allocate: (assign: Int32Array) => Int32Array;
}

/**
 * The event loop. Times are milliseconds. Per-request state lives in slots (reused after a request
 * completes) of typed arrays; each task is a pool of identical replicas with one FIFO queue (a ring
 * buffer of slots and enqueue times). No closure or object is created per event.
 */
export class Engine {
  readonly n: number;
  readonly stats: Stats;
  assign: Int32Array;
  servers: Int32Array;
  private readonly busy: Int32Array;
  private readonly readyAt: Float64Array;
  private base: Float64Array;
  private devs: Float64Array;
  // Edges in CSR form by source task; transfer time per edge under the current placement.
  private readonly succStart: Int32Array;
  private readonly succTo: Int32Array;
  private readonly succEdge: Int32Array;
  private readonly indeg: Int32Array;
  private readonly sources: Int32Array;
  private xfer: Float64Array;
  private readonly edgeFrom: Int32Array;
  private readonly edgeTo: Int32Array;
  // Per-slot request state.
  private cap = 0;
  private arrival = new Float64Array(0);
  private shape = new Int32Array(0);
  private remaining = new Int32Array(0);
  private pending = new Int32Array(0);
  private wait = new Float64Array(0);
  private free = new Int32Array(0);
  private freeTop = 0;
  private inFlight = 0;
  // FIFO ring per task.
  private qSlot: Int32Array[];
  private qTime: Float64Array[];
  private readonly qHead: Int32Array;
  private readonly qLen: Int32Array;
  private readonly heap = new EventHeap(4096);
  events = 0;
  private arrived = 0;

  constructor(
    private readonly c: EngineConfig,
    assign: Int32Array,
  ) {
    const p = c.problem;
    const n = p.tasks.length;
    this.n = n;
    this.stats = new Stats(p.classes.length, n, c.windowS, c.slaMs);
    const index = new Map(p.tasks.map((t, i) => [t.id, i]));
    const from = Int32Array.from(p.edges, (e) => index.get(e.from)!);
    const to = Int32Array.from(p.edges, (e) => index.get(e.to)!);
    this.edgeFrom = from;
    this.edgeTo = to;
    this.succStart = new Int32Array(n + 1);
    for (const u of from) this.succStart[u + 1]!++;
    for (let i = 0; i < n; i++) this.succStart[i + 1]! += this.succStart[i]!;
    const fill = this.succStart.slice(0, n);
    this.succTo = new Int32Array(from.length);
    this.succEdge = new Int32Array(from.length);
    this.indeg = new Int32Array(n);
    from.forEach((u, e) => {
      const k = fill[u]!++;
      this.succTo[k] = to[e]!;
      this.succEdge[k] = e;
      this.indeg[to[e]!]!++;
    });
    this.sources = Int32Array.from([...Array(n).keys()].filter((i) => this.indeg[i] === 0));
    this.busy = new Int32Array(n);
    this.readyAt = new Float64Array(n);
    this.qHead = new Int32Array(n);
    this.qLen = new Int32Array(n);
    this.qSlot = Array.from({ length: n }, () => new Int32Array(64));
    this.qTime = Array.from({ length: n }, () => new Float64Array(64));
    this.assign = assign;
    this.servers = c.allocate(assign);
    this.stats.replicas(0, this.servers);
    this.base = new Float64Array(n);
    this.devs = new Float64Array(n);
    this.xfer = new Float64Array(p.edges.length);
    this.applyTimes();
    this.growSlots(1024);
  }

  /** Service times, devices per replica and transfer times under the current placement. */
  private applyTimes(): void {
    const p = this.c.problem;
    for (let i = 0; i < this.n; i++) {
      const j = this.assign[i]!;
      this.base[i] = p.timeMs[i]![j]!;
      this.devs[i] = Math.max(1, p.devices[i]![j]!);
    }
    p.edges.forEach((e, k) => {
      const a = this.assign[this.edgeFrom[k]!]!;
      const b = this.assign[this.edgeTo[k]!]!;
      if (a === b) this.xfer[k] = 0;
      else {
        // As the planner: the slower endpoint's link, or the profiled fixed time.
        const ms = (c: number) => e.transferMs ?? (e.bytes / (p.classes[c]!.linkGBps * 1e9)) * 1e3;
        this.xfer[k] = Math.max(ms(a), ms(b));
      }
    });
  }

  /** Moves the tasks whose class changed; their pools start serving after the migration time. */
  migrate(assign: Int32Array, nowMs: number): void {
    let moved = 0;
    for (let i = 0; i < this.n; i++) if (assign[i] !== this.assign[i]) moved++;
    if (moved === 0) return;
    const servers = this.c.allocate(assign);
    for (let i = 0; i < this.n; i++) {
      if (assign[i] !== this.assign[i] && this.c.migrationMs > 0) {
        this.readyAt[i] = nowMs + this.c.migrationMs;
        this.heap.push(this.readyAt[i]!, 0, READY | (i << 3));
      }
    }
    this.assign = assign;
    this.servers = servers;
    this.applyTimes();
    this.stats.migrations(nowMs, moved);
    this.stats.replicas(nowMs, servers);
    for (let i = 0; i < this.n; i++) this.drain(i, nowMs);
  }

  /**
   * Sets each task's replicas on its class. Added replicas serve at once; a removed replica finishes
   * the execution it is running, and the pool starts no more than its new count.
   */
  rescale(replicas: Int32Array, nowMs: number): void {
    let up = 0;
    let down = 0;
    for (let i = 0; i < this.n; i++) {
      if (replicas[i]! > this.servers[i]!) up++;
      else if (replicas[i]! < this.servers[i]!) down++;
    }
    if (up + down === 0) return;
    this.servers = Int32Array.from(replicas);
    this.stats.scalings(nowMs, up, down);
    this.stats.replicas(nowMs, this.servers);
    for (let i = 0; i < this.n; i++) this.drain(i, nowMs);
  }

  private growSlots(cap: number): void {
    const n = this.n;
    const grow = <T extends Float64Array | Int32Array>(old: T, size: number, make: (k: number) => T): T => {
      const a = make(size);
      a.set(old);
      return a;
    };
    this.arrival = grow(this.arrival, cap, (k) => new Float64Array(k));
    this.shape = grow(this.shape, cap, (k) => new Int32Array(k));
    this.remaining = grow(this.remaining, cap, (k) => new Int32Array(k));
    this.wait = grow(this.wait, cap, (k) => new Float64Array(k));
    this.pending = grow(this.pending, cap * n, (k) => new Int32Array(k));
    const free = new Int32Array(cap);
    free.set(this.free.subarray(0, this.freeTop));
    for (let s = cap - 1; s >= this.cap; s--) free[this.freeTop++] = s;
    this.free = free;
    this.cap = cap;
  }

  run(): void {
    const c = this.c;
    const heap = this.heap;
    const endMs = c.durationS * 1e3;
    const first = c.source.next(0) * 1e3;
    if (first <= endMs && c.requests > 0) heap.push(first, c.source.shape(), ARRIVAL);
    if (c.controlS > 0) heap.push(c.controlS * 1e3, 0, CONTROL);
    while (heap.size > 0) {
      heap.pop();
      const now = heap.topTime;
      const slot = heap.topSlot;
      const tag = heap.topTag;
      const kind = tag & 7;
      const i = tag >> 3;
      this.events++;
      if (kind === FINISH) this.finish(slot, i, now);
      else if (kind === DELIVER) this.deliver(slot, i, now);
      else if (kind === ARRIVAL) {
        this.arrive(slot, now);
        if (++this.arrived < c.requests) {
          const t = c.source.next(now / 1e3) * 1e3;
          if (t <= endMs) heap.push(t, c.source.shape(), ARRIVAL);
        }
      } else if (kind === CONTROL) {
        c.control(this, now);
        // Control stops with the arrivals; the queues then drain under the last placement.
        if (this.arrived < c.requests && now + c.controlS * 1e3 <= endMs)
          heap.push(now + c.controlS * 1e3, 0, CONTROL);
      } else this.drain(i, now);
    }
  }

  private arrive(shape: number, now: number): void {
    this.stats.arrival(now);
    if (this.inFlight >= this.c.maxInFlight) {
      this.stats.reject(now);
      return;
    }
    if (this.freeTop === 0) this.growSlots(Math.min(this.cap * 2, this.c.maxInFlight));
    const s = this.free[--this.freeTop]!;
    this.inFlight++;
    this.arrival[s] = now;
    this.shape[s] = shape;
    this.remaining[s] = this.n;
    this.wait[s] = 0;
    this.pending.set(this.indeg, s * this.n);
    const src = this.sources;
    for (let k = 0; k < src.length; k++) this.enqueue(s, src[k]!, now);
  }

  private enqueue(s: number, i: number, now: number): void {
    this.stats.opArrival(i);
    if (this.busy[i]! < this.servers[i]! && this.qLen[i] === 0 && now >= this.readyAt[i]!) {
      this.start(s, i, now);
      return;
    }
    let ring = this.qSlot[i]!;
    if (this.qLen[i] === ring.length) {
      const size = ring.length;
      const slots = new Int32Array(size * 2);
      const times = new Float64Array(size * 2);
      const h = this.qHead[i]!;
      slots.set(ring.subarray(h));
      slots.set(ring.subarray(0, h), size - h);
      times.set(this.qTime[i]!.subarray(h));
      times.set(this.qTime[i]!.subarray(0, h), size - h);
      this.qSlot[i] = ring = slots;
      this.qTime[i] = times;
      this.qHead[i] = 0;
    }
    const at = (this.qHead[i]! + this.qLen[i]!) & (ring.length - 1);
    ring[at] = s;
    this.qTime[i]![at] = now;
    this.qLen[i]!++;
  }

  private start(s: number, i: number, now: number): void {
    this.busy[i]!++;
    const c = this.c;
    let d = this.base[i]! * c.shapeScale[this.shape[s]! * this.n + i]!;
    if (c.noise === 1) d *= c.rng.exponential(1);
    else if (c.noise === 2) d *= Math.exp(c.lognormalSigma * c.rng.normal() - 0.5 * c.lognormalSigma ** 2);
    this.stats.busy(now, this.assign[i]!, d * this.devs[i]!);
    this.stats.opStart(i, d);
    this.heap.push(now + d, s, FINISH | (i << 3));
  }

  /** Starts queued work on free replicas of task i. */
  private drain(i: number, now: number): void {
    if (now < this.readyAt[i]!) return;
    const ring = this.qSlot[i]!;
    const mask = ring.length - 1;
    while (this.qLen[i]! > 0 && this.busy[i]! < this.servers[i]!) {
      const h = this.qHead[i]!;
      const s = ring[h]!;
      this.wait[s]! += now - this.qTime[i]![h]!;
      this.qHead[i] = (h + 1) & mask;
      this.qLen[i]!--;
      this.start(s, i, now);
    }
  }

  private finish(s: number, i: number, now: number): void {
    this.busy[i]!--;
    this.drain(i, now);
    for (let k = this.succStart[i]!, end = this.succStart[i + 1]!; k < end; k++) {
      const v = this.succTo[k]!;
      const t = this.xfer[this.succEdge[k]!]!;
      if (t > 0) this.heap.push(now + t, s, DELIVER | (v << 3));
      else this.deliver(s, v, now);
    }
    if (--this.remaining[s]! === 0) {
      this.stats.complete(this.arrival[s]!, now, this.wait[s]!);
      this.inFlight--;
      this.free[this.freeTop++] = s;
    }
  }

  private deliver(s: number, v: number, now: number): void {
    if (--this.pending[s * this.n + v]! === 0) this.enqueue(s, v, now);
  }

  /** Op executions waiting in queues now. */
  queued(): number {
    let q = 0;
    for (let i = 0; i < this.n; i++) q += this.qLen[i]!;
    return q;
  }

  /** Each op over the control period so far: its replicas and queue now, its arrivals and starts. */
  periodOps(): OpPeriod[] {
    const s = this.stats;
    return Array.from({ length: this.n }, (_, i) => {
      const started = s.periodOpStarted[i]!;
      return {
        replicas: this.servers[i]!,
        arrivals: s.periodOpArrivals[i]!,
        started,
        meanServiceMs: started > 0 ? s.periodOpServiceMs[i]! / started : null,
        queued: this.qLen[i]!,
      };
    });
  }
}
