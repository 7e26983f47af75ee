import { type PlacementProblem, planHeuristic } from '@stitch/planner';
import { type ArrivalSpec, arrivalSource, MAX_REQUESTS } from './arrivals.js';
import { Engine, type NoiseKind } from './engine.js';
import { SimError, SimErrorCode } from './errors.js';
import {
  allocate,
  fleetCounts,
  fleetUsdPerHour,
  type ReplicaMode,
  resolvePlacement,
  resolveReplicas,
} from './fleet.js';
import { type Policy, type Snapshot, staticPolicy } from './policy.js';
import { Random } from './random.js';
import { MAX_WINDOWS, type Window } from './stats.js';

/** A request shape: multipliers of op service times, by task id or op name (e.g. `llm.decode`). */
export interface ShapeSpec {
  name: string;
  /** Share of generated requests with this shape (relative). @default 1 */
  weight?: number;
  scale: Record<string, number>;
}

export interface SimOptions {
  /** The agent graph and the fleet: every class needs `count` (its devices). */
  problem: PlacementProblem;
  /** End-to-end latency bound per request, milliseconds. */
  slaMs: number;
  arrivals: ArrivalSpec;
  /** Arrivals stop after this many requests… @default 1 000 000 for a generator, the trace's length for a trace */
  requests?: number;
  /** …or at this simulated time, seconds. @default Infinity (a generator then needs `requests`) */
  durationS?: number;
  /** @default 1 */
  seed?: number;
  /** Service-time noise: `exponential` (mean 1, for queueing checks) or lognormal with this coefficient of variation. @default none */
  noise?: { kind: 'none' } | { kind: 'exponential' } | { kind: 'lognormal'; cv: number };
  shapes?: readonly ShapeSpec[];
  /** Initial class per task; default: `planHeuristic` at `planRate` within the fleet. */
  placement?: readonly string[];
  /** Rate the initial plan is sized for, requests/s. @default the arrivals' peak rate (outside bursts) */
  planRate?: number;
  /** @default staticPolicy */
  policy?: Policy;
  /** Seconds between policy calls. @default 60 */
  controlPeriodS?: number;
  /** Width of a time-series window, seconds. @default 3600 */
  windowS?: number;
  /** Requests in flight beyond this are rejected (counted as SLA misses). @default 1 000 000 */
  maxInFlight?: number;
  /** A migrated op's replicas serve again this long after the decision, ms. @default 0 */
  migrationMs?: number;
  /**
   * Replicas of the initial placement (and after a migration): `fill` shares out every device of a
   * class among its ops; `one` starts each op at one replica, as the coordinator deploys, leaving
   * the rest free for a policy that scales replicas (`rebalancePolicy`). @default 'fill'
   */
  replicas?: ReplicaMode;
}

export interface ClassReport {
  classId: string;
  /** Always true: every device in a simulation is modelled (times from the cost model). */
  modelled: true;
  devices: number;
  usdPerHour: number;
  utilisation: number;
}

export interface SimResult {
  requests: number;
  completed: number;
  rejected: number;
  slaMs: number;
  slaAttainment: number;
  latencyMs: { mean: number; p50: number; p95: number; p99: number; max: number };
  /** Mean time a request spent in op queues (all ops together), ms. */
  meanQueueWaitMs: number;
  /** Simulated time from 0 to the last completion, seconds. */
  spanS: number;
  fleetUsdPerHour: number;
  /** Fleet cost over the span per 1 000 completed requests. */
  usdPer1k: number;
  devices: number;
  classes: ClassReport[];
  migrations: number;
  /** Replica changes a policy made: ops scaled out, ops scaled in (one per op per decision). */
  replicaChanges: { scaleOut: number; scaleIn: number };
  /** Rate the initial plan was sized for; 0 when the fleet could not hold the peak; null for a given placement. */
  plannedRate: number | null;
  /** Final class and replicas per task. */
  placement: { task: string; classId: string; replicas: number }[];
  windows: Window[];
  events: number;
  wallMs: number;
  eventsPerS: number;
}

function fail(path: string, what: string, got: unknown): never {
  throw new SimError(SimErrorCode.Input, `${path} must be ${what}, got ${JSON.stringify(got)}`);
}

function positive(v: unknown, path: string, integer = false): number {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || (integer && !Number.isInteger(v)))
    fail(path, integer ? 'a positive integer' : 'a finite number > 0', v);
  return v;
}

function shapeTable(p: PlacementProblem, shapes: readonly ShapeSpec[]): Float64Array {
  const n = p.tasks.length;
  const out = new Float64Array((shapes.length + 1) * n).fill(1);
  shapes.forEach((s, k) => {
    for (const [key, f] of Object.entries(s.scale ?? {})) {
      if (!(typeof f === 'number' && f > 0 && Number.isFinite(f)))
        fail(`options.shapes[${k}].scale.${key}`, 'a number > 0', f);
      let hit = false;
      p.tasks.forEach((t, i) => {
        if (t.id === key || t.op === key) {
          out[(k + 1) * n + i] = f;
          hit = true;
        }
      });
      if (!hit) fail(`options.shapes[${k}].scale`, 'keyed by task ids or op names of the problem', key);
    }
  });
  return out;
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/** Runs the fleet over the arrivals and reports SLA, latency, $ and utilisation, overall and per window. */
export function simulate(o: SimOptions): SimResult {
  if (typeof o !== 'object' || o === null) fail('options', 'an object', o);
  const p = checkedProblem(o.problem);
  const slaMs = positive(o.slaMs, 'options.slaMs');
  const counts = fleetCounts(p);
  const seed = o.seed ?? 1;
  if (!Number.isInteger(seed)) fail('options.seed', 'an integer', seed);
  const rng = new Random(seed);
  const shapes = o.shapes ?? [];
  if (!Array.isArray(shapes)) fail('options.shapes', 'an array', shapes);
  const shapeScale = shapeTable(p, shapes);
  const shapeIndex = new Map(shapes.map((s, k) => [s.name, k + 1]));
  const weights = shapes.map((s, k) => positive(s.weight ?? 1, `options.shapes[${k}].weight`));
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const source = arrivalSource(o.arrivals, rng, shapeIndex, shapePicker(weights, totalWeight, rng));
  const requests = o.requests ?? (o.arrivals.kind === 'trace' ? o.arrivals.entries.length : 1_000_000);
  if (!Number.isInteger(requests) || requests < 1 || requests > MAX_REQUESTS)
    fail('options.requests', `an integer 1..${MAX_REQUESTS}`, requests);
  const durationS = o.durationS === undefined ? Infinity : positive(o.durationS, 'options.durationS');
  const windowS = positive(o.windowS ?? 3600, 'options.windowS');
  const controlS = positive(o.controlPeriodS ?? 60, 'options.controlPeriodS');
  const maxInFlight = positive(o.maxInFlight ?? 1_000_000, 'options.maxInFlight', true);
  const migrationMs = o.migrationMs ?? 0;
  if (!(migrationMs >= 0 && Number.isFinite(migrationMs)))
    fail('options.migrationMs', 'a finite number >= 0', migrationMs);
  const { noiseKind, sigma } = serviceNoise(o.noise ?? { kind: 'none' });
  const replicaMode = o.replicas ?? 'fill';
  if (replicaMode !== 'fill' && replicaMode !== 'one')
    fail('options.replicas', "'fill' or 'one'", replicaMode);
  const policy = o.policy ?? staticPolicy;
  if (typeof policy !== 'function')
    fail('options.policy', 'a function (snapshot) => decision', typeof policy);

  const { assign, plannedRate } = initialPlacement(p, o, slaMs, source.peakRate);
  // Mean shape multiplier per task, so devices are shared by expected work.
  const n = p.tasks.length;
  const loadScale = new Float64Array(n).fill(weights.length === 0 ? 1 : 0);
  weights.forEach((w, k) => {
    for (let i = 0; i < n; i++) loadScale[i]! += (w / totalWeight) * shapeScale[(k + 1) * n + i]!;
  });

  const engine: Engine = new Engine(
    {
      problem: p,
      slaMs,
      rng,
      source,
      requests,
      durationS,
      noise: noiseKind,
      lognormalSigma: sigma,
      shapeScale,
      windowS,
      controlS,
      maxInFlight,
      migrationMs,
      allocate: (a) => allocate(p, a, counts, loadScale, replicaMode),
      control: controlLoop(p, counts, slaMs, controlS, policy),
    },
    assign,
  );
  if (durationS !== Infinity && durationS / windowS > MAX_WINDOWS)
    fail('options.windowS', `at least durationS / ${MAX_WINDOWS}`, windowS);
  const t0 = Date.now();
  engine.run();
  const wallMs = Math.max(1, Date.now() - t0);
  return { ...report(engine, p, counts, slaMs, wallMs), plannedRate };
}

function report(
  e: Engine,
  p: PlacementProblem,
  counts: Int32Array,
  slaMs: number,
  wallMs: number,
): Omit<SimResult, 'plannedRate'> {
  const s = e.stats;
  const lat = s.latencies.subarray(0, s.completed).sort();
  let sum = 0;
  for (let k = 0; k < lat.length; k++) sum += lat[k]!;
  const spanS = s.lastMs / 1e3;
  const usdPerHour = fleetUsdPerHour(p, counts);
  const judged = s.completed + s.rejected;
  return {
    requests: s.arrivals,
    completed: s.completed,
    rejected: s.rejected,
    slaMs,
    slaAttainment: judged > 0 ? s.attained / judged : 0,
    latencyMs: {
      mean: lat.length ? sum / lat.length : 0,
      p50: percentile(lat, 0.5),
      p95: percentile(lat, 0.95),
      p99: percentile(lat, 0.99),
      max: lat.length ? lat[lat.length - 1]! : 0,
    },
    meanQueueWaitMs: s.completed ? s.waitSum / s.completed : 0,
    spanS,
    fleetUsdPerHour: usdPerHour,
    usdPer1k: s.completed > 0 ? ((usdPerHour * spanS) / 3600 / s.completed) * 1000 : 0,
    devices: counts.reduce((a, b) => a + b, 0),
    classes: p.classes.map((c, j) => ({
      classId: c.id,
      modelled: true,
      devices: counts[j]!,
      usdPerHour: c.usdPerHour,
      utilisation: counts[j]! > 0 && spanS > 0 ? s.classBusyMs[j]! / (counts[j]! * spanS * 1e3) : 0,
    })),
    migrations: s.migrationCount,
    replicaChanges: { scaleOut: s.scaleOuts, scaleIn: s.scaleIns },
    placement: p.tasks.map((t, i) => ({
      task: t.id,
      classId: p.classes[e.assign[i]!]!.id,
      replicas: e.servers[i]!,
    })),
    windows: s.series(counts),
    events: e.events,
    wallMs,
    eventsPerS: e.events / (wallMs / 1e3),
  };
}

/** The problem, checked: the planner's builders produce these shapes; a hand-made one is checked before use. */
function checkedProblem(p: PlacementProblem | undefined): PlacementProblem {
  if (!p || !Array.isArray(p.tasks) || p.tasks.length === 0)
    fail('options.problem', 'a placement problem with tasks', typeof p);
  const m = Array.isArray(p.classes) ? p.classes.length : 0;
  const rows = (t: unknown) =>
    Array.isArray(t) && t.length === p.tasks.length && t.every((r) => Array.isArray(r) && r.length === m);
  if (m === 0 || !rows(p.timeMs) || !rows(p.devices) || !Array.isArray(p.edges))
    fail(
      'options.problem',
      'tasks × classes tables (timeMs, devices) and an edges array',
      `${p.tasks.length} tasks`,
    );
  const ids = new Set(p.tasks.map((t) => t.id));
  const stray = p.edges.find((e) => !ids.has(e.from) || !ids.has(e.to));
  if (stray || ids.size !== p.tasks.length)
    fail('options.problem.edges', 'between known tasks, with unique task ids', stray ?? 'duplicate task ids');
  return p;
}

/** Draws a request's shape by weight: its number (1-based), or 0 when there are no shapes. */
function shapePicker(weights: number[], totalWeight: number, rng: Random): () => number {
  return () => {
    if (weights.length === 0) return 0;
    let r = rng.uniform() * totalWeight;
    for (let k = 0; k < weights.length; k++) {
      r -= weights[k]!;
      if (r <= 0) return k + 1;
    }
    return weights.length;
  };
}

/** The engine's service-time noise: its kind and, for log-normal, σ from the coefficient of variation. */
function serviceNoise(noise: NonNullable<SimOptions['noise']>): { noiseKind: NoiseKind; sigma: number } {
  if (noise.kind === 'none') return { noiseKind: 0, sigma: 0 };
  if (noise.kind === 'exponential') return { noiseKind: 1, sigma: 0 };
  if (noise.kind === 'lognormal') {
    const cv = positive(noise.cv, 'options.noise.cv');
    return { noiseKind: 2, sigma: Math.sqrt(Math.log(1 + cv * cv)) };
  }
  return fail(
    'options.noise.kind',
    "'none', 'exponential' or 'lognormal'",
    (noise as { kind: unknown }).kind,
  );
}

/**
 * The placement the fleet starts from: the options' own, or the heuristic's for the planned rate (the
 * arrivals' peak unless `planRate` says), with `plannedRate` the rate it was planned for (null when
 * given, 0 when the fleet could not take the rate).
 */
function initialPlacement(
  p: PlacementProblem,
  o: SimOptions,
  slaMs: number,
  peakRate: number,
): { assign: Int32Array; plannedRate: number | null } {
  if (o.placement !== undefined)
    return { assign: resolvePlacement(p, o.placement, 'options.placement'), plannedRate: null };
  let plannedRate = o.planRate === undefined ? peakRate : positive(o.planRate, 'options.planRate');
  let plan = planHeuristic(p, { slaMs, rate: plannedRate });
  // A fleet too small for the rate is still worth simulating (that is how one finds out how
  // it fails): place for latency and cost alone, one replica per task at least.
  if (plan.status === 'infeasible' && plan.binding === 'capacity') {
    plannedRate = 0;
    plan = planHeuristic(p, { slaMs });
  }
  if (plan.status === 'infeasible')
    throw new SimError(SimErrorCode.Plan, `no initial placement for the fleet: ${plan.message}`);
  const assign = resolvePlacement(
    p,
    plan.placements.map((x) => x.classId),
    'the planned placement',
  );
  return { assign, plannedRate };
}

/**
 * The engine's control step, every `controlS`: a snapshot of the period for `policy`, whose decision
 * (a placement, replicas) the engine applies; the policy's own state goes round from one call to the next.
 */
function controlLoop(
  p: PlacementProblem,
  counts: Int32Array,
  slaMs: number,
  controlS: number,
  policy: Policy,
): (e: Engine, nowMs: number) => void {
  let policyState: unknown;
  return (e, nowMs) => {
    const s = e.stats;
    const snapshot: Snapshot = {
      timeS: nowMs / 1e3,
      periodS: controlS,
      problem: p,
      slaMs,
      placement: Array.from(e.assign, (j) => p.classes[j]!.id),
      arrivalRate: s.periodArrivals / controlS,
      utilisation: Array.from(counts, (c, j) => (c > 0 ? s.periodBusyMs[j]! / (c * controlS * 1e3) : 0)),
      attainment: s.periodCompleted > 0 ? s.periodAttained / s.periodCompleted : null,
      queued: e.queued(),
      ops: e.periodOps(),
      state: policyState,
    };
    s.resetPeriod();
    const d = policy(snapshot);
    if (!d) return;
    if (d.placement) e.migrate(resolvePlacement(p, d.placement, 'the policy decision placement'), nowMs);
    if (d.replicas)
      e.rescale(
        resolveReplicas(p, e.assign, counts, e.servers, d.replicas, 'the policy decision replicas'),
        nowMs,
      );
    if (d.state !== undefined) policyState = d.state;
  };
}
