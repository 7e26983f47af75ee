import {
  type Catalog,
  type CorrectionTable,
  type Demand,
  type DeviceClass,
  deviceHourlyCost,
  estimateOp,
  findDevice,
  type PeakBasis,
  type TcoOptions,
} from '@stitch/cost';
import { PlanError, PlanErrorCode } from './errors.js';
import type { EdgeSpec, PlacementProblem } from './problem.js';

/** Structurally the `DemandRow` of @stitch/ir, so the planner does not depend on the IR package. */
export interface DemandRowLike {
  id: string;
  op: string;
  kind: string;
  demand: Demand;
  deps: string[];
  edgeBytes: Record<string, number>;
  attrs: Record<string, string | number | boolean>;
}

export interface DerivedOptions {
  catalog: Catalog;
  /** Class ids to consider; default: the whole catalog. */
  classes?: readonly string[];
  /** Devices available per class id; absent = unlimited. */
  counts?: Record<string, number>;
  basis?: PeakBasis;
  tco?: TcoOptions;
  /** Measured ÷ estimated factors per (op kind, device) and per (op, device) that scale the roofline times. */
  correction?: CorrectionTable;
  /** The deployment whose ops' own corrections apply to the rows (by row id); absent: by kind only. */
  correctionDeployment?: string;
  /** Class ids that are real on this host; every other class is marked modelled. @default ['cpu'] */
  realClasses?: readonly string[];
}

/** Ops that wait on IO or run glue code; the paper places them on CPUs. */
const HOST_KINDS = new Set(['agent', 'tool', 'memory', 'text']);

function extraLatencyMs(attrs: DemandRowLike['attrs']): number {
  const v = attrs.latency_ms ?? attrs.latencyMs;
  return typeof v === 'number' && v > 0 ? v : 0;
}

/** Alternatives one placement hint may list, and the longest hint read. */
const MAX_HINT_ALTERNATIVES = 16;
const MAX_HINT_CHARS = 256;

/** One alternative of a hint: a class id, `*` matching any run of characters, or a kind. */
function alternativeNames(v: string): (d: DeviceClass) => boolean {
  const kind =
    v === 'gpu' || v === 'accelerator' ? 'accelerator' : v === 'cpu' || v === 'host' ? 'cpu' : null;
  if (kind) return (d) => d.kind === kind;
  if (!v.includes('*')) return (d) => d.id === v;
  return (d) => globMatches(v, d.id);
}

/**
 * Whether `text` matches `pattern`, where `*` matches any run of characters: the two-pointer walk
 * that goes back only to the last `*`, linear in both lengths (a regular expression built from a
 * hint's stars could backtrack for ever).
 */
export function globMatches(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * The classes a placement hint names: alternatives separated by `|` ("a100|a10g", "h100|gaudi*"),
 * each a class id (`*` for any run of characters), or "gpu"/"accelerator" and "cpu"/"host" for a
 * kind. A hint past its bounds names nothing (it is then ignored, like one naming no class here).
 */
function hintNames(v: string): (d: DeviceClass) => boolean {
  const alternatives = v.length <= MAX_HINT_CHARS ? v.split('|').map((a) => a.trim()) : [];
  if (alternatives.length > MAX_HINT_ALTERNATIVES || alternatives.some((a) => a === '')) return () => false;
  const names = alternatives.map(alternativeNames);
  return (d) => names.some((named) => named(d));
}

/**
 * Whether an op's `attrs.placement` pins it among `devices`. A hint that names none of them is
 * ignored rather than making the op unplaceable (the graph may have been written for another fleet).
 */
export function placementHintApplies(v: unknown, devices: readonly DeviceClass[]): boolean {
  return typeof v === 'string' && devices.some(hintNames(v));
}

function hintMatcher(v: unknown, devices: readonly DeviceClass[]): (d: DeviceClass) => boolean {
  return typeof v === 'string' && placementHintApplies(v, devices) ? hintNames(v) : () => true;
}

/**
 * Refuses a row whose demand figures or edge sizes are negative or not finite: the roofline would
 * turn them into negative or NaN times and transfers, a "feasible" plan built on nothing. The IR
 * verifier keeps them sane; this guards callers that build rows without it.
 */
function checkRow(r: DemandRowLike): void {
  const figures: [string, unknown][] = [
    ...Object.entries(r.demand).map(([k, v]): [string, unknown] => [`demand.${k}`, v]),
    ...Object.entries(r.edgeBytes).map(([k, v]): [string, unknown] => [`edgeBytes.${k}`, v]),
  ];
  for (const [path, v] of figures) {
    if (typeof v !== 'number' || !(Number.isFinite(v) && v >= 0)) {
      throw new PlanError(
        PlanErrorCode.Input,
        `demand row '${r.id}' (${r.op}): ${path} must be a finite number >= 0, found ${String(v)}; fix the demand table (annotate-demand computes it) and retry`,
      );
    }
  }
}

/** Demand table × catalog → placement problem, timing each (op, class) with the roofline model. */
export function problemFromDemand(rows: readonly DemandRowLike[], o: DerivedOptions): PlacementProblem {
  for (const r of rows) checkRow(r);
  const ids = o.classes ?? o.catalog.map((d) => d.id);
  const devices = ids.map((id) => findDevice(o.catalog, id));
  const real = new Set(o.realClasses ?? ['cpu']);
  const classes = devices.map((d) => {
    const count = o.counts?.[d.id];
    return {
      id: d.id,
      usdPerHour: deviceHourlyCost(d, o.tco).totalUsdPerHour,
      linkGBps: d.link.scaleOutGBps,
      egressUsdPerGB: d.link.egressUsdPerGB ?? 0,
      modelled: !real.has(d.id),
      ...(count !== undefined ? { count } : {}),
    };
  });
  const timeMs: number[][] = [];
  const devs: number[][] = [];
  const edges: EdgeSpec[] = [];
  const scope = o.correctionDeployment;
  const corrected = (op: string) => (scope === undefined ? undefined : { deployment: scope, op });
  for (const r of rows) {
    const hint = hintMatcher(r.attrs.placement, devices);
    const dtype = r.attrs.dtype === 'fp8' ? 'fp8' : 'fp16';
    const t: number[] = [];
    const n: number[] = [];
    for (const d of devices) {
      const allowed = (!HOST_KINDS.has(r.kind) || d.kind === 'cpu') && hint(d);
      const est = allowed
        ? estimateOp(r.demand, d, {
            dtype,
            basis: o.basis ?? 'paper',
            extraLatencyMs: extraLatencyMs(r.attrs),
          })
        : null;
      const ok = est?.feasible === true;
      t.push(ok ? (o.correction?.apply(r.kind, d.id, est.ms, corrected(r.id)) ?? est.ms) : Infinity);
      n.push(ok ? est.devices : 0);
    }
    timeMs.push(t);
    devs.push(n);
    for (const dep of r.deps) edges.push({ from: dep, to: r.id, bytes: r.edgeBytes[dep] ?? 0 });
  }
  return {
    tasks: rows.map((r) => ({ id: r.id, op: r.op, deps: [...r.deps] })),
    classes,
    timeMs,
    devices: devs,
    edges,
  };
}

type Obj = Record<string, unknown>;

function fail(path: string, what: string): never {
  throw new PlanError(PlanErrorCode.Input, `${path} must be ${what}; fix the profile file and retry`);
}

function numberMap(v: unknown, path: string): Record<string, number> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'an object of class id → number');
  for (const [k, x] of Object.entries(v)) {
    if (x !== null && (typeof x !== 'number' || !(x >= 0)))
      fail(`${path}.${k}`, 'a non-negative number or null');
  }
  return v as Record<string, number>;
}

/**
 * Profiled tables (the paper's second input path): `{ classes: [{id, usd_per_hour, count?, link_gbps?,
 * egress_usd_per_gb?}], tasks: [{id, op?, deps?, time_ms: {class: ms}, usd_per_request?: {class: $},
 * devices?: {class: n}}], edges?: [{from, to, bytes?, transfer_ms?, usd_per_transfer?}] }`. A class
 * missing from time_ms cannot run the task.
 */
export function problemFromProfile(json: unknown): PlacementProblem {
  if (typeof json !== 'object' || json === null) fail('profile', 'a JSON object');
  const root = json as Obj;
  if (!Array.isArray(root.classes) || root.classes.length === 0) fail('profile.classes', 'a non-empty array');
  if (!Array.isArray(root.tasks) || root.tasks.length === 0) fail('profile.tasks', 'a non-empty array');
  const classes = root.classes.map((v, j) => {
    const c = v as Obj;
    const path = `profile.classes[${j}]`;
    if (typeof c?.id !== 'string') fail(`${path}.id`, 'a string');
    if (typeof c.usd_per_hour !== 'number' || !(c.usd_per_hour >= 0))
      fail(`${path}.usd_per_hour`, 'a number >= 0');
    if (c.count !== undefined && (typeof c.count !== 'number' || !(c.count >= 0)))
      fail(`${path}.count`, 'a number >= 0');
    const link = c.link_gbps ?? 50;
    if (typeof link !== 'number' || !(link > 0)) fail(`${path}.link_gbps`, 'a positive number');
    const egress = c.egress_usd_per_gb;
    if (egress !== undefined && (typeof egress !== 'number' || !(egress >= 0)))
      fail(`${path}.egress_usd_per_gb`, 'a number >= 0');
    return {
      id: c.id,
      usdPerHour: c.usd_per_hour,
      linkGBps: link,
      ...(c.count !== undefined ? { count: c.count as number } : {}),
      ...(egress !== undefined ? { egressUsdPerGB: egress as number } : {}),
    };
  });
  const explicit = root.tasks.some((t) => (t as Obj)?.usd_per_request !== undefined);
  const timeMs: number[][] = [];
  const devices: number[][] = [];
  const usdPerRequest: number[][] = [];
  const tasks = root.tasks.map((v, i) => {
    const t = v as Obj;
    const path = `profile.tasks[${i}]`;
    if (typeof t?.id !== 'string') fail(`${path}.id`, 'a string');
    const deps = t.deps ?? [];
    if (!Array.isArray(deps) || deps.some((d) => typeof d !== 'string'))
      fail(`${path}.deps`, 'an array of task ids');
    const times = numberMap(t.time_ms, `${path}.time_ms`);
    const costs = numberMap(t.usd_per_request, `${path}.usd_per_request`);
    const devs = numberMap(t.devices, `${path}.devices`);
    timeMs.push(classes.map((c) => (typeof times[c.id] === 'number' ? times[c.id]! : Infinity)));
    devices.push(classes.map((c) => devs[c.id] ?? 1));
    const fallback = (j: number) => (timeMs[i]![j]! / 3.6e6) * devices[i]![j]! * classes[j]!.usdPerHour;
    usdPerRequest.push(classes.map((c, j) => costs[c.id] ?? fallback(j)));
    return { id: t.id, deps: deps as string[], ...(typeof t.op === 'string' ? { op: t.op } : {}) };
  });
  const edges: EdgeSpec[] = [];
  if (root.edges !== undefined && !Array.isArray(root.edges)) fail('profile.edges', 'an array');
  for (const [k, v] of ((root.edges as unknown[] | undefined) ?? []).entries()) {
    const e = v as Obj;
    const path = `profile.edges[${k}]`;
    if (typeof e?.from !== 'string' || typeof e.to !== 'string')
      fail(path, 'an object with string from and to');
    const bytes = e.bytes ?? 0;
    if (typeof bytes !== 'number' || !(bytes >= 0)) fail(`${path}.bytes`, 'a number >= 0');
    const spec: EdgeSpec = { from: e.from, to: e.to, bytes };
    if (e.transfer_ms !== undefined) {
      if (typeof e.transfer_ms !== 'number' || !(e.transfer_ms >= 0))
        fail(`${path}.transfer_ms`, 'a number >= 0');
      spec.transferMs = e.transfer_ms;
    }
    if (e.usd_per_transfer !== undefined) {
      if (typeof e.usd_per_transfer !== 'number' || !(e.usd_per_transfer >= 0))
        fail(`${path}.usd_per_transfer`, 'a number >= 0 ($ per request when the edge crosses classes)');
      spec.usdPerTransfer = e.usd_per_transfer;
    }
    edges.push(spec);
  }
  const known = new Set(edges.map((e) => `${e.from}\u0000${e.to}`));
  for (const t of tasks) {
    for (const d of t.deps) if (!known.has(`${d}\u0000${t.id}`)) edges.push({ from: d, to: t.id, bytes: 0 });
  }
  const p: PlacementProblem = { tasks, classes, timeMs, devices, edges };
  if (explicit) p.usdPerRequest = usdPerRequest;
  return p;
}
