import { getHeapStatistics } from 'node:v8';
import { InvalidOptions } from '../errors.js';

/** When a node sheds load (NodeOptions.shedding). */
export interface SheddingOptions {
  /** Shed while the V8 heap in use is above this share of its limit. @default 0.9 */
  heapFraction?: number;
  /** Shed while the event loop runs late by more than this, ms. @default off */
  lagMs?: number;
}

export interface SheddingLimits {
  heapFraction: number | undefined;
  lagMs: number | undefined;
}

/** What a node's inspection says of its shedding (NodeInspection.shedding). */
export interface NodeShedding {
  /** Why the node sheds now; absent while it does not. */
  reason?: string;
  /** Messages answered Overloaded by shedding since the node started. */
  shed: number;
}

/** How often the loop's lateness and the heap are measured. */
export const SHEDDING_SAMPLE_MS = 50;
/** Shedding ends once every measure has stayed under its way out for this long. */
const CALM_MS = 200;
/** A measure leaves shedding below this share of its bound, so that it does not flap at the bound. */
const EXIT_SHARE = 0.8;

export function resolveShedding(options: SheddingOptions | false | undefined): SheddingLimits {
  if (options === false) return { heapFraction: undefined, lagMs: undefined };
  const heapFraction = options?.heapFraction ?? 0.9;
  if (!Number.isFinite(heapFraction) || heapFraction <= 0 || heapFraction > 1)
    throw new InvalidOptions('shedding.heapFraction must be above 0 and at most 1');
  const lagMs = options?.lagMs;
  if (lagMs !== undefined && (!Number.isFinite(lagMs) || lagMs < SHEDDING_SAMPLE_MS))
    throw new InvalidOptions(`shedding.lagMs must be at least ${SHEDDING_SAMPLE_MS} (its sampling period)`);
  return { heapFraction, lagMs };
}

/**
 * Decides when a node sheds load: new fast-mode messages to its actors are then answered Overloaded
 * at once, so that callers back off, rather than queued in a process whose heap nears its limit (the
 * next allocation may kill it, with every actor on it) or whose loop is already late. It measures
 * every SHEDDING_SAMPLE_MS: how late that timer fired, and the heap in use against its limit.
 */
export class LoadShedder {
  #reason: string | undefined;
  #calmSince: number | undefined;
  #shed = 0;
  #timer: NodeJS.Timeout | undefined;
  #due = 0;

  constructor(
    private readonly limits: SheddingLimits,
    private readonly heap: () => { used: number; limit: number } = heapInUse,
  ) {}

  /** Why the node sheds now, or undefined. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** One message answered Overloaded by shedding. */
  shed(): void {
    this.#shed++;
  }

  inspect(): NodeShedding {
    return { ...(this.#reason ? { reason: this.#reason } : {}), shed: this.#shed };
  }

  start(): void {
    if (this.limits.heapFraction === undefined && this.limits.lagMs === undefined) return;
    this.#due = performance.now() + SHEDDING_SAMPLE_MS;
    this.#schedule();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One measurement at `now` (ms, monotonic): the loop `lateMs` late. */
  sample(now: number, lateMs: number): void {
    const over = this.#over(lateMs, 1);
    if (over) {
      this.#reason = over;
      this.#calmSince = undefined;
      return;
    }
    if (this.#reason === undefined) return;
    if (this.#over(lateMs, EXIT_SHARE)) {
      this.#calmSince = undefined;
      return;
    }
    this.#calmSince ??= now;
    if (now - this.#calmSince >= CALM_MS) {
      this.#reason = undefined;
      this.#calmSince = undefined;
    }
  }

  /** Which measure is above `share` of its bound, said for a caller; undefined when none is. */
  #over(lateMs: number, share: number): string | undefined {
    const { lagMs, heapFraction } = this.limits;
    if (lagMs !== undefined && lateMs > lagMs * share)
      return `its event loop runs ${Math.round(lateMs)} ms late (shedding.lagMs ${lagMs})`;
    if (heapFraction === undefined) return undefined;
    const { used, limit } = this.heap();
    if (limit > 0 && used > limit * heapFraction * share)
      return `its heap is ${((100 * used) / limit).toFixed(1)} % full (shedding.heapFraction ${heapFraction})`;
    return undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      const now = performance.now();
      this.sample(now, Math.max(0, now - this.#due));
      this.#due = now + SHEDDING_SAMPLE_MS;
      this.#schedule();
    }, SHEDDING_SAMPLE_MS);
    this.#timer.unref();
  }
}

function heapInUse(): { used: number; limit: number } {
  const h = getHeapStatistics();
  return { used: h.used_heap_size, limit: h.heap_size_limit };
}
