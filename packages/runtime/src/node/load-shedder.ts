import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { InvalidOptions } from '../errors.js';

/** When a node sheds load (NodeOptions.shedding). */
export interface SheddingOptions {
  /**
   * Shed while V8's old generation (where live objects stay) is fuller than this share of its limit.
   * @default 0.9
   */
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
/** Between samples, a message looks at the heap again when the last look is this old. */
const HEAP_CHECK_MS = 5;
const HEAP_CHECK_EVERY = 4;
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
  #started = false;
  #sampledAt = 0;
  #lastLateMs = 0;
  #untilLook = 0;

  constructor(
    private readonly limits: SheddingLimits,
    private readonly heap: () => { used: number; limit: number } = heapInUse,
  ) {}

  /** Why the node sheds now, or undefined. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /**
   * For a new message: why it is refused (and counted so), or undefined. Messages look at the heap
   * between the timer's samples too (at most every HEAP_CHECK_MS): a handler that allocates fast can
   * fill a small heap within one sampling period. The clock is read every HEAP_CHECK_EVERY messages
   * only: 51 ns a message when read every time, 17 so, 1.4 with shedding off (the 50 ms timer still
   * covers a slow trickle).
   */
  refusal(): string | undefined {
    if (this.#started && this.limits.heapFraction !== undefined && --this.#untilLook <= 0) {
      this.#untilLook = HEAP_CHECK_EVERY;
      const now = performance.now();
      if (now - this.#sampledAt >= HEAP_CHECK_MS) this.sample(now, this.#lastLateMs);
    }
    if (this.#reason !== undefined) this.#shed++;
    return this.#reason;
  }

  inspect(): NodeShedding {
    return { ...(this.#reason ? { reason: this.#reason } : {}), shed: this.#shed };
  }

  start(): void {
    if (this.limits.heapFraction === undefined && this.limits.lagMs === undefined) return;
    this.#started = true;
    // At once: the node's first capability record already says whether it sheds.
    const now = performance.now();
    this.sample(now, 0);
    this.#due = now + SHEDDING_SAMPLE_MS;
    this.#schedule();
  }

  stop(): void {
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One measurement at `now` (ms, monotonic): the loop `lateMs` late. */
  sample(now: number, lateMs: number): void {
    this.#sampledAt = now;
    this.#lastLateMs = lateMs;
    // Read once: both bounds below are compared with the same figures.
    const heap = this.limits.heapFraction === undefined ? undefined : this.heap();
    const over = this.#over(lateMs, heap, 1);
    if (over) {
      this.#reason = over;
      this.#calmSince = undefined;
      return;
    }
    if (this.#reason === undefined) return;
    if (this.#over(lateMs, heap, EXIT_SHARE)) {
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
  #over(
    lateMs: number,
    heap: { used: number; limit: number } | undefined,
    share: number,
  ): string | undefined {
    const { lagMs, heapFraction } = this.limits;
    if (lagMs !== undefined && lateMs > lagMs * share)
      return `its event loop runs ${Math.round(lateMs)} ms late (shedding.lagMs ${lagMs})`;
    if (heapFraction === undefined || heap === undefined) return undefined;
    const { used, limit } = heap;
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

/**
 * The old generation in use against its limit: what runs out when V8 stops the process. V8's
 * heap_size_limit also counts a reserve of three semi-spaces for the young generation, which the old
 * one never gets (with --max-old-space-size=64 the process died at 57 % of heap_size_limit), and the
 * young generation's garbage would count as use until the next scavenge.
 */
function heapInUse(): { used: number; limit: number } {
  let used = 0;
  for (const s of getHeapSpaceStatistics()) if (!s.space_name.startsWith('new_')) used += s.space_used_size;
  return { used, limit: getHeapStatistics().heap_size_limit - YOUNG_RESERVE_BYTES };
}

/** Three semi-spaces of --max-semi-space-size MiB (V8's default 16 on 64-bit hosts). */
const YOUNG_RESERVE_BYTES = 3 * semiSpaceMiB() * 1024 * 1024;

function semiSpaceMiB(): number {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  for (const [i, f] of flags.entries()) {
    const m = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/.exec(f);
    const mib = Number(m?.[1] ?? (m ? flags[i + 1] : undefined));
    if (Number.isSafeInteger(mib) && mib > 0) return mib;
  }
  return 16;
}
