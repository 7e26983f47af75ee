import { CostError, CostErrorCode } from './errors.js';

export interface CorrectionOptions {
  /** Weight of a new sample in the moving average. @default 0.2 */
  alpha?: number;
  /** Factors are clamped to [min, max] so one outlier cannot wreck the plan. @default 0.05 */
  min?: number;
  /** @default 20 */
  max?: number;
}

export interface CorrectionEntry {
  factor: number;
  samples: number;
}

/**
 * Measured ÷ estimated latency per (op kind, device), as an exponentially weighted moving average
 * in log space (so 2× too slow and 2× too fast pull equally hard). The coordinator feeds measured
 * latencies in and multiplies model estimates by `factor` before re-planning.
 */
export class CorrectionTable {
  readonly #alpha: number;
  readonly #min: number;
  readonly #max: number;
  readonly #entries = new Map<string, CorrectionEntry>();

  constructor(options: CorrectionOptions = {}) {
    this.#alpha = options.alpha ?? 0.2;
    this.#min = options.min ?? 0.05;
    this.#max = options.max ?? 20;
    if (!(this.#alpha > 0 && this.#alpha <= 1)) {
      throw new CostError(CostErrorCode.Input, `options.alpha must be in (0, 1], got ${this.#alpha}`);
    }
    if (!(this.#min > 0 && this.#min <= 1 && this.#max >= 1)) {
      throw new CostError(CostErrorCode.Input, 'options.min must be in (0, 1] and options.max must be >= 1');
    }
  }

  /** Records one measurement; returns the updated factor. Non-positive samples are rejected. */
  observe(kind: string, deviceId: string, estimatedMs: number, measuredMs: number): number {
    if (!(estimatedMs > 0) || !(measuredMs > 0) || !Number.isFinite(estimatedMs + measuredMs)) {
      throw new CostError(
        CostErrorCode.Input,
        `latency samples must be positive and finite (estimated ${estimatedMs} ms, measured ${measuredMs} ms)`,
      );
    }
    const key = `${kind}\u0000${deviceId}`;
    const prev = this.#entries.get(key);
    const sample = Math.log(measuredMs / estimatedMs);
    const logF = prev ? (1 - this.#alpha) * Math.log(prev.factor) + this.#alpha * sample : sample;
    const factor = Math.min(this.#max, Math.max(this.#min, Math.exp(logF)));
    this.#entries.set(key, { factor, samples: (prev?.samples ?? 0) + 1 });
    return factor;
  }

  factor(kind: string, deviceId: string): number {
    return this.#entries.get(`${kind}\u0000${deviceId}`)?.factor ?? 1;
  }

  /** The estimate corrected by what has been measured so far. */
  apply(kind: string, deviceId: string, estimatedMs: number): number {
    return estimatedMs * this.factor(kind, deviceId);
  }

  /** Plain data for persisting in KV; `CorrectionTable.restore` reads it back. */
  snapshot(): Record<string, CorrectionEntry & { kind: string; deviceId: string }> {
    const out: Record<string, CorrectionEntry & { kind: string; deviceId: string }> = {};
    for (const [key, e] of this.#entries) {
      const [kind = '', deviceId = ''] = key.split('\u0000');
      out[`${kind}@${deviceId}`] = { kind, deviceId, ...e };
    }
    return out;
  }

  static restore(
    snapshot: ReturnType<CorrectionTable['snapshot']>,
    options?: CorrectionOptions,
  ): CorrectionTable {
    const t = new CorrectionTable(options);
    for (const e of Object.values(snapshot)) {
      t.#entries.set(`${e.kind}\u0000${e.deviceId}`, { factor: e.factor, samples: e.samples });
    }
    return t;
  }
}
