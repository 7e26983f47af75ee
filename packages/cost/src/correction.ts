import { CostError, CostErrorCode } from './errors.js';

export interface CorrectionOptions {
  /** Weight of a new sample in the moving average. @default 0.2 */
  alpha?: number;
  /** Factors are clamped to [min, max] so one outlier cannot wreck the plan. @default 0.05 */
  min?: number;
  /** @default 20 */
  max?: number;
  /** Samples an op needs before its own factor replaces its kind's. @default 3 */
  opSamples?: number;
  /** Op entries kept at most; the least recently measured are dropped first. @default 16384 */
  maxOps?: number;
}

export interface CorrectionEntry {
  factor: number;
  samples: number;
}

/** Which op a measurement is of: the deployment that runs it and its id in that graph. */
export interface CorrectedOp {
  deployment: string;
  op: string;
}

/** One entry of a snapshot: a kind's factor on a device, or one op's when `deployment` and `op` are set. */
export interface CorrectionRecord extends CorrectionEntry {
  kind: string;
  deviceId: string;
  deployment?: string;
  op?: string;
}

const SEP = '\u0000';

/**
 * Measured ÷ estimated latency per (op kind, device) and per (op, device), as an exponentially
 * weighted moving average in log space (so 2× too slow and 2× too fast pull equally hard). The
 * coordinator feeds measured latencies in and multiplies model estimates by `factor` before
 * re-planning. Two ops of one kind can be misjudged differently (a compute-bound prefill and a
 * memory-bound decode are both `llm`), so an op measured `opSamples` times is corrected by its own
 * factor; until then, and for ops never measured, its kind's factor (which pools them all) applies.
 */
export class CorrectionTable {
  readonly #alpha: number;
  readonly #min: number;
  readonly #max: number;
  readonly #opSamples: number;
  readonly #maxOps: number;
  readonly #kinds = new Map<string, CorrectionEntry>();
  /** In least recently measured order (an update moves its entry to the end). */
  readonly #ops = new Map<string, CorrectionEntry>();

  constructor(options: CorrectionOptions = {}) {
    this.#alpha = options.alpha ?? 0.2;
    this.#min = options.min ?? 0.05;
    this.#max = options.max ?? 20;
    this.#opSamples = options.opSamples ?? 3;
    this.#maxOps = options.maxOps ?? 16384;
    if (!(this.#alpha > 0 && this.#alpha <= 1)) {
      throw new CostError(CostErrorCode.Input, `options.alpha must be in (0, 1], got ${this.#alpha}`);
    }
    if (!(this.#min > 0 && this.#min <= 1 && this.#max >= 1)) {
      throw new CostError(CostErrorCode.Input, 'options.min must be in (0, 1] and options.max must be >= 1');
    }
    for (const [name, v] of [
      ['opSamples', this.#opSamples],
      ['maxOps', this.#maxOps],
    ] as const)
      if (!Number.isSafeInteger(v) || v < 0)
        throw new CostError(CostErrorCode.Input, `options.${name} must be a whole number >= 0, got ${v}`);
  }

  /**
   * Records one measurement of `kind` on `deviceId`, and of `op` itself when given; returns the
   * factor that now applies to it. Non-positive samples are rejected.
   */
  observe(kind: string, deviceId: string, estimatedMs: number, measuredMs: number, op?: CorrectedOp): number {
    if (!(estimatedMs > 0) || !(measuredMs > 0) || !Number.isFinite(estimatedMs + measuredMs)) {
      throw new CostError(
        CostErrorCode.Input,
        `latency samples must be positive and finite (estimated ${estimatedMs} ms, measured ${measuredMs} ms)`,
      );
    }
    const sample = Math.log(measuredMs / estimatedMs);
    const kindKey = kindKeyOf(kind, deviceId);
    this.#kinds.set(kindKey, this.#updated(this.#kinds.get(kindKey), sample));
    if (op && this.#maxOps > 0) {
      const key = opKeyOf(kind, deviceId, op);
      const prev = this.#ops.get(key);
      this.#ops.delete(key);
      this.#ops.set(key, this.#updated(prev, sample));
      if (this.#ops.size > this.#maxOps) this.#ops.delete(this.#ops.keys().next().value as string);
    }
    return this.factor(kind, deviceId, op);
  }

  #updated(prev: CorrectionEntry | undefined, sample: number): CorrectionEntry {
    const logF = prev ? (1 - this.#alpha) * Math.log(prev.factor) + this.#alpha * sample : sample;
    const factor = Math.min(this.#max, Math.max(this.#min, Math.exp(logF)));
    return { factor, samples: (prev?.samples ?? 0) + 1 };
  }

  /** The op's own factor once it has `opSamples` samples, else its kind's on that device (1 unmeasured). */
  factor(kind: string, deviceId: string, op?: CorrectedOp): number {
    const own = op && this.#ops.get(opKeyOf(kind, deviceId, op));
    if (own && own.samples >= this.#opSamples) return own.factor;
    return this.#kinds.get(kindKeyOf(kind, deviceId))?.factor ?? 1;
  }

  /** The estimate corrected by what has been measured so far. */
  apply(kind: string, deviceId: string, estimatedMs: number, op?: CorrectedOp): number {
    return estimatedMs * this.factor(kind, deviceId, op);
  }

  /** Drops the op entries of a deployment (its graph was replaced: its op ids may name other ops now). */
  forgetDeployment(deployment: string): void {
    for (const key of [...this.#ops.keys()]) if (key.split(SEP)[2] === deployment) this.#ops.delete(key);
  }

  /**
   * Plain data for persisting or sending: kinds' entries under `kind@device`, ops' under
   * `deployment/op@device` (only `deployment`'s when given); `CorrectionTable.restore` reads it back.
   */
  snapshot(deployment?: string): Record<string, CorrectionRecord> {
    const out: Record<string, CorrectionRecord> = {};
    for (const [key, e] of this.#kinds) {
      const [kind = '', deviceId = ''] = key.split(SEP);
      out[`${kind}@${deviceId}`] = { kind, deviceId, ...e };
    }
    for (const [key, e] of this.#ops) {
      const [kind = '', deviceId = '', of = '', op = ''] = key.split(SEP);
      if (deployment === undefined || of === deployment)
        out[`${of}/${op}@${deviceId}`] = { kind, deviceId, deployment: of, op, ...e };
    }
    return out;
  }

  static restore(snapshot: Record<string, CorrectionRecord>, options?: CorrectionOptions): CorrectionTable {
    const t = new CorrectionTable(options);
    for (const e of Object.values(snapshot)) {
      const entry = { factor: e.factor, samples: e.samples };
      if (e.deployment !== undefined && e.op !== undefined)
        t.#ops.set(opKeyOf(e.kind, e.deviceId, { deployment: e.deployment, op: e.op }), entry);
      else t.#kinds.set(kindKeyOf(e.kind, e.deviceId), entry);
    }
    return t;
  }
}

function kindKeyOf(kind: string, deviceId: string): string {
  return `${kind}${SEP}${deviceId}`;
}

function opKeyOf(kind: string, deviceId: string, op: CorrectedOp): string {
  return `${kind}${SEP}${deviceId}${SEP}${op.deployment}${SEP}${op.op}`;
}
