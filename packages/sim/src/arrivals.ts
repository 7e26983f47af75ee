import { SimError, SimErrorCode } from './errors.js';
import type { Random } from './random.js';

/**
 * Requests from a generator: a Poisson process whose rate follows an optional diurnal curve and
 * optional periodic bursts (a non-homogeneous Poisson process, drawn by thinning).
 */
export interface GeneratorSpec {
  kind: 'generator';
  /** Requests per second at the trough of the day (the whole day when `diurnal` is absent). */
  rate: number;
  /** Cosine day curve: the rate rises to `rate × peakRatio` at `peakAtS` of each period. */
  diurnal?: {
    peakRatio: number /** @default 86400 */;
    periodS?: number /** @default periodS / 2 */;
    peakAtS?: number;
  };
  /** Spikes: the rate is multiplied by `factor` for `durationS` every `everyS`, from `offsetS`. */
  bursts?: { everyS: number; durationS: number; factor: number /** @default 0 */; offsetS?: number };
}

/** Recorded arrivals: seconds from the start, non-decreasing; `shape` names one of `options.shapes`. */
export interface TraceSpec {
  kind: 'trace';
  entries: readonly { t: number; shape?: string }[];
}

export type ArrivalSpec = GeneratorSpec | TraceSpec;

/** The most requests a trace or a run may hold. */
export const MAX_REQUESTS = 50_000_000;

function bad(path: string, what: string, got: unknown): never {
  throw new SimError(SimErrorCode.Input, `${path} must be ${what}, got ${JSON.stringify(got)}`);
}

const positive = (v: unknown, path: string): number =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : bad(path, 'a finite number > 0', v);

/** Arrival times in seconds, one after another; Infinity when there are no more. */
export interface ArrivalSource {
  next(nowS: number): number;
  /** Shape index of the request returned by the last `next`. */
  shape(): number;
  /** Highest rate the source reaches outside bursts, requests per second (what a fleet is sized for). */
  readonly peakRate: number;
}

class Generator implements ArrivalSource {
  readonly peakRate: number;
  private readonly maxRate: number;
  private readonly amp: number;
  private readonly omega: number;
  private readonly peakAt: number;

  constructor(
    private readonly s: GeneratorSpec,
    private readonly rng: Random,
    private readonly pickShape: () => number,
  ) {
    positive(s.rate, 'options.arrivals.rate');
    const d = s.diurnal;
    if (d) {
      if (!(typeof d.peakRatio === 'number' && d.peakRatio >= 1 && Number.isFinite(d.peakRatio)))
        bad('options.arrivals.diurnal.peakRatio', 'a finite number >= 1', d.peakRatio);
      if (d.periodS !== undefined) positive(d.periodS, 'options.arrivals.diurnal.periodS');
    }
    const b = s.bursts;
    if (b) {
      positive(b.everyS, 'options.arrivals.bursts.everyS');
      positive(b.durationS, 'options.arrivals.bursts.durationS');
      if (!(typeof b.factor === 'number' && b.factor >= 1 && Number.isFinite(b.factor)))
        bad('options.arrivals.bursts.factor', 'a finite number >= 1', b.factor);
    }
    const period = d?.periodS ?? 86400;
    this.amp = d ? d.peakRatio - 1 : 0;
    this.omega = (2 * Math.PI) / period;
    this.peakAt = d?.peakAtS ?? period / 2;
    this.peakRate = s.rate * (1 + this.amp);
    this.maxRate = this.peakRate * (b?.factor ?? 1);
  }

  rateAt(t: number): number {
    let r = this.s.rate * (1 + (this.amp * (1 + Math.cos(this.omega * (t - this.peakAt)))) / 2);
    const b = this.s.bursts;
    if (b) {
      const phase = (t - (b.offsetS ?? 0)) % b.everyS;
      if (phase >= 0 && phase < b.durationS) r *= b.factor;
    }
    return r;
  }

  next(now: number): number {
    // Thinning: candidates at the maximum rate, each kept with probability rate(t) / max.
    let t = now;
    for (;;) {
      t += this.rng.exponential(1 / this.maxRate);
      if (this.amp === 0 && !this.s.bursts) return t;
      if (this.rng.uniform() * this.maxRate <= this.rateAt(t)) return t;
    }
  }

  shape(): number {
    return this.pickShape();
  }
}

class Trace implements ArrivalSource {
  readonly peakRate: number;
  private i = 0;
  private last = 0;

  constructor(
    private readonly times: Float64Array,
    private readonly shapes: Int32Array,
  ) {
    const span = times.length > 1 ? times[times.length - 1]! - times[0]! : 0;
    this.peakRate = span > 0 ? (times.length - 1) / span : times.length;
  }

  next(): number {
    if (this.i >= this.times.length) return Infinity;
    this.last = this.shapes[this.i]!;
    return this.times[this.i++]!;
  }

  shape(): number {
    return this.last;
  }
}

/** Validates the spec and returns its source; `shapeIndex` maps a trace's shape names. */
export function arrivalSource(
  spec: ArrivalSpec,
  rng: Random,
  shapeIndex: ReadonlyMap<string, number>,
  pickShape: () => number,
): ArrivalSource {
  if (typeof spec !== 'object' || spec === null) bad('options.arrivals', 'an object', spec);
  if (spec.kind === 'generator') return new Generator(spec, rng, pickShape);
  if (spec.kind !== 'trace')
    bad('options.arrivals.kind', "'generator' or 'trace'", (spec as { kind: unknown }).kind);
  const entries = spec.entries;
  if (!Array.isArray(entries) || entries.length === 0)
    bad('options.arrivals.entries', 'a non-empty array', entries);
  if (entries.length > MAX_REQUESTS)
    bad('options.arrivals.entries', `at most ${MAX_REQUESTS} entries`, entries.length);
  const times = new Float64Array(entries.length);
  const shapes = new Int32Array(entries.length);
  let prev = 0;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    const t = e?.t;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < prev)
      bad(`options.arrivals.entries[${k}].t`, `a finite number >= ${prev} (seconds, non-decreasing)`, t);
    times[k] = prev = t;
    if (e.shape !== undefined) {
      const s = shapeIndex.get(e.shape);
      if (s === undefined)
        bad(`options.arrivals.entries[${k}].shape`, 'a name listed in options.shapes', e.shape);
      shapes[k] = s;
    }
  }
  return new Trace(times, shapes);
}
