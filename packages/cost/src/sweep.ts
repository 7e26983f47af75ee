import { type Catalog, type DeviceClass, PAPER_CATALOG, PAPER_DEVICE_IDS } from './catalog.js';
import { CostError, CostErrorCode } from './errors.js';
import { runTcoStudy, type ScenarioResult, type StudyOptions, scenarioLabel } from './study.js';
import { type ResolvedTco, resolveTco, type TcoOptions } from './tco.js';

/** How far each assumption of the TCO study is moved. Intervals are [low, high]. */
export interface SweepRanges {
  /** Each device's price times 1 − f … 1 + f, one device at a time. @default 0.3 */
  price: number;
  /** Financing period, years. @default [3, 6] */
  years: [number, number];
  /** @default [0, 0.16] */
  annualInterest: [number, number];
  /**
   * Electricity, $/kWh. With `power: 'tdp'` it is the price TDP is billed at; with Table 5
   * operating costs they are scaled by price ÷ the base `usdPerKwh` (taken as all power).
   * @default [0.1, 0.7]
   */
  usdPerKwh: [number, number];
  /** Busy share of the hours (see `TcoOptions.utilisation`). @default [0.3, 1] */
  utilisation: [number, number];
  /** Achieved ÷ peak of one device class at a time (see `DeviceClass.efficiency`). @default [0.5, 1] */
  efficiency: [number, number];
}

export interface SweepOptions extends StudyOptions {
  ranges?: Partial<SweepRanges>;
  /** Evenly spaced values per assumption, the base value added when inside the range. @default 5 */
  points?: number;
}

export type SweepKind = 'price' | 'years' | 'interest' | 'power-price' | 'utilisation' | 'efficiency';

/** The cheapest pair of one scenario under one set of assumptions. */
export interface SweepWinner {
  /** `prefill::decode`, or null when no pair is feasible. */
  pair: string | null;
  usdPerRequest: number | null;
  /** The winner's $/request ÷ H100::H100's under the same assumptions (null without h100). */
  relativeTco: number | null;
  /**
   * $ per request of the base winner ÷ that of the cheapest other pair: below 1 the base
   * conclusion holds, above 1 it is overturned; null when either side is infeasible.
   */
  margin: number | null;
}

/** One scenario along one assumption: which pair wins at each value, and over which interval. */
export interface SweepSeries {
  scenario: string;
  /** One entry per value of the parameter. */
  points: SweepWinner[];
  /** Consecutive values with the same winner; `from`/`to` are the first and last such value. */
  regions: { from: number; to: number; pair: string | null }[];
  /** The winner differs from the base winner at some value. */
  flips: boolean;
}

export interface SweepParameter {
  /** `price:<device>`, `years`, `interest`, `power-price`, `utilisation`, `efficiency:<device>`. */
  id: string;
  kind: SweepKind;
  device?: string;
  /** Unit of `base` and `values`: a price multiplier, years, a rate, $/kWh, a share. */
  base: number;
  values: number[];
  series: SweepSeries[];
  /** Scenarios whose winner changes somewhere in the range. */
  flips: number;
}

export interface SweepResult {
  basis: 'paper' | 'dense';
  tco: ResolvedTco;
  ranges: SweepRanges;
  assumptions: string[];
  scenarios: string[];
  /** The study's own winners, one per scenario. */
  base: SweepWinner[];
  parameters: SweepParameter[];
}

const DEFAULTS: SweepRanges = {
  price: 0.3,
  years: [3, 6],
  annualInterest: [0, 0.16],
  usdPerKwh: [0.1, 0.7],
  utilisation: [0.3, 1],
  efficiency: [0.5, 1],
};
export const DEFAULT_SWEEP_RANGES: Readonly<SweepRanges> = Object.freeze(DEFAULTS);

const MAX_POINTS = 21;

function bad(what: string, got: unknown): never {
  throw new CostError(
    CostErrorCode.SweepRange,
    `sweep range ${what}, got ${JSON.stringify(got)}; give a narrower or ordered range`,
  );
}

function interval(name: string, v: unknown, min: number, max: number, openMin: boolean): [number, number] {
  const ok =
    Array.isArray(v) &&
    v.length === 2 &&
    v.every((x) => typeof x === 'number' && Number.isFinite(x)) &&
    (openMin ? v[0] > min : v[0] >= min) &&
    v[0] <= v[1] &&
    v[1] <= max;
  if (!ok) bad(`${name} must be [low, high] with ${min} ${openMin ? '<' : '≤'} low ≤ high ≤ ${max}`, v);
  return [v[0], v[1]];
}

/** Checks a user's ranges and fills in the defaults; a bad one throws `SWEEP_RANGE`. */
export function resolveSweepRanges(r: Partial<SweepRanges> = {}): SweepRanges {
  const d = DEFAULT_SWEEP_RANGES;
  const price = r.price ?? d.price;
  if (typeof price !== 'number' || !(price >= 0 && price <= 0.95)) {
    bad('price must be a fraction f in [0, 0.95] (prices × 1 − f … 1 + f)', price);
  }
  return {
    price,
    years: interval('years', r.years ?? d.years, 0, 50, true),
    annualInterest: interval('annualInterest', r.annualInterest ?? d.annualInterest, 0, 1, false),
    usdPerKwh: interval('usdPerKwh', r.usdPerKwh ?? d.usdPerKwh, 0, 10, false),
    utilisation: interval('utilisation', r.utilisation ?? d.utilisation, 0, 1, true),
    efficiency: interval('efficiency', r.efficiency ?? d.efficiency, 0, 1, true),
  };
}

/** `points` evenly spaced values over [lo, hi] plus `base` when it lies inside, ascending. */
function spaced(lo: number, hi: number, points: number, base: number): number[] {
  const out = new Set<number>();
  for (let k = 0; k < points; k++) out.add(Number((lo + ((hi - lo) * k) / (points - 1)).toPrecision(12)));
  if (base >= lo && base <= hi) out.add(base);
  return [...out].sort((a, b) => a - b);
}

interface Setting {
  catalog: Catalog;
  tco: TcoOptions;
}

const withDevice = (catalog: Catalog, id: string, f: (d: DeviceClass) => DeviceClass): Catalog =>
  catalog.map((d) => (d.id === id ? f(d) : d));

function scalePrice(d: DeviceClass, k: number): DeviceClass {
  const out = { ...d, spec: { ...d.spec, priceUsd: d.spec.priceUsd * k } };
  if (d.paper) out.paper = { ...d.paper, priceUsd: d.paper.priceUsd * k };
  return out;
}

function scaleOpCost(d: DeviceClass, k: number): DeviceClass {
  const out = { ...d, spec: { ...d.spec, opCostUsdPerHour: d.spec.opCostUsdPerHour * k } };
  if (d.paper) out.paper = { ...d.paper, opCostUsdPerHour: d.paper.opCostUsdPerHour * k };
  return out;
}

interface Axis {
  id: string;
  kind: SweepKind;
  device?: string;
  base: number;
  lo: number;
  hi: number;
  apply(s: Setting, v: number): Setting;
}

function axes(ids: readonly string[], catalog: Catalog, tco: ResolvedTco, r: SweepRanges): Axis[] {
  const find = (id: string) => catalog.find((d) => d.id === id)!;
  const out: Axis[] = ids.map((id) => ({
    id: `price:${id}`,
    kind: 'price',
    device: id,
    base: 1,
    lo: 1 - r.price,
    hi: 1 + r.price,
    apply: (s, v) => ({ ...s, catalog: withDevice(s.catalog, id, (d) => scalePrice(d, v)) }),
  }));
  out.push(
    {
      id: 'years',
      kind: 'years',
      base: tco.years,
      lo: r.years[0],
      hi: r.years[1],
      apply: (s, v) => ({ ...s, tco: { ...s.tco, years: v } }),
    },
    {
      id: 'interest',
      kind: 'interest',
      base: tco.annualInterest,
      lo: r.annualInterest[0],
      hi: r.annualInterest[1],
      apply: (s, v) => ({ ...s, tco: { ...s.tco, annualInterest: v } }),
    },
    {
      id: 'power-price',
      kind: 'power-price',
      base: tco.usdPerKwh,
      lo: r.usdPerKwh[0],
      hi: r.usdPerKwh[1],
      apply: (s, v) =>
        tco.power === 'tdp'
          ? { ...s, tco: { ...s.tco, usdPerKwh: v } }
          : { ...s, catalog: s.catalog.map((d) => scaleOpCost(d, v / tco.usdPerKwh)) },
    },
    {
      id: 'utilisation',
      kind: 'utilisation',
      base: tco.utilisation,
      lo: r.utilisation[0],
      hi: r.utilisation[1],
      apply: (s, v) => ({ ...s, tco: { ...s.tco, utilisation: v } }),
    },
  );
  for (const id of ids) {
    out.push({
      id: `efficiency:${id}`,
      kind: 'efficiency',
      device: id,
      base: find(id).efficiency ?? 1,
      lo: r.efficiency[0],
      hi: r.efficiency[1],
      apply: (s, v) => ({ ...s, catalog: withDevice(s.catalog, id, (d) => ({ ...d, efficiency: v })) }),
    });
  }
  return out;
}

const pairId = (p: { prefill: string; decode: string }) => `${p.prefill}::${p.decode}`;

function winner(s: ScenarioResult, baseWinner: string | null): SweepWinner {
  let best: { id: string; usd: number; rel: number | null } | null = null;
  let baseUsd: number | null = null;
  let otherUsd = Number.POSITIVE_INFINITY;
  for (const p of s.pairs) {
    if (p.usdPerRequest === undefined) continue;
    const id = pairId(p);
    if (!best || p.usdPerRequest < best.usd) best = { id, usd: p.usdPerRequest, rel: p.relativeTco ?? null };
    if (id === baseWinner) baseUsd = p.usdPerRequest;
    else otherUsd = Math.min(otherUsd, p.usdPerRequest);
  }
  const margin = baseUsd !== null && Number.isFinite(otherUsd) ? baseUsd / otherUsd : null;
  return { pair: best?.id ?? null, usdPerRequest: best?.usd ?? null, relativeTco: best?.rel ?? null, margin };
}

function regions(values: number[], points: SweepWinner[]): SweepSeries['regions'] {
  const out: SweepSeries['regions'] = [];
  points.forEach((p, k) => {
    const last = out.at(-1);
    if (last && last.pair === p.pair) last.to = values[k]!;
    else out.push({ from: values[k]!, to: values[k]!, pair: p.pair });
  });
  return out;
}

/**
 * Moves one assumption of the TCO study at a time over its range (each device's price, financing
 * years, interest, electricity price, utilisation, each device's efficiency) and reports, per
 * scenario, which prefill::decode pair wins at each value and by what margin over the runner-up.
 */
export function sweepTco(o: SweepOptions = {}): SweepResult {
  const ranges = resolveSweepRanges(o.ranges);
  const points = o.points ?? 5;
  if (!Number.isInteger(points) || points < 2 || points > MAX_POINTS) {
    bad(`points must be an integer in [2, ${MAX_POINTS}]`, points);
  }
  const catalog = o.catalog ?? PAPER_CATALOG;
  const ids = o.devices ?? PAPER_DEVICE_IDS;
  const tco = resolveTco(o.tco);
  if (tco.power === 'paper' && !(tco.usdPerKwh > 0)) {
    bad('power-price needs a base usdPerKwh > 0 to scale Table 5 operating costs by', tco.usdPerKwh);
  }
  const study = (s: Setting) => runTcoStudy({ ...o, catalog: s.catalog, tco: s.tco, devices: ids });
  const baseStudy = study({ catalog, tco });
  const baseIds = baseStudy.scenarios.map((s) => winner(s, null).pair);
  const base = baseStudy.scenarios.map((s, n) => winner(s, baseIds[n]!));
  const parameters = axes(ids, catalog, tco, ranges).map((axis): SweepParameter => {
    const values = spaced(axis.lo, axis.hi, points, axis.base);
    const runs = values.map((v) => study(axis.apply({ catalog, tco }, v)).scenarios);
    const series = baseStudy.scenarios.map((s, n): SweepSeries => {
      const pts = runs.map((scenarios) => winner(scenarios[n]!, baseIds[n]!));
      return {
        scenario: scenarioLabel(s.scenario),
        points: pts,
        regions: regions(values, pts),
        flips: pts.some((p) => p.pair !== baseIds[n]),
      };
    });
    const flips = series.filter((x) => x.flips).length;
    const device = axis.device === undefined ? {} : { device: axis.device };
    return { id: axis.id, kind: axis.kind, ...device, base: axis.base, values, series, flips };
  });
  return {
    basis: baseStudy.basis,
    tco,
    ranges,
    assumptions: baseStudy.assumptions,
    scenarios: baseStudy.scenarios.map((s) => scenarioLabel(s.scenario)),
    base,
    parameters,
  };
}
