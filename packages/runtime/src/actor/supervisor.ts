import type { ResolvedActorOptions } from './options.js';

/** What the supervisor decided after a crash. */
export type CrashDecision = { restart: true; backoffMs: number } | { restart: false };

/**
 * The restart budget of one activation: at most `maxRestarts` restarts within `withinMs`, each after
 * a backoff that doubles per restart in the window (capped); one crash more stops the actor.
 */
export class RestartBudget {
  readonly #policy: ResolvedActorOptions['restart'];
  #times: number[] = [];
  #restarts = 0;

  constructor(policy: ResolvedActorOptions['restart']) {
    this.#policy = policy;
  }

  /** Restarts so far, over the activation's life. */
  get restarts(): number {
    return this.#restarts;
  }

  crashed(now: number): CrashDecision {
    const { maxRestarts, withinMs, backoffMs, maxBackoffMs } = this.#policy;
    this.#times = this.#times.filter((t) => now - t < withinMs);
    if (this.#times.length >= maxRestarts) return { restart: false };
    this.#times.push(now);
    this.#restarts++;
    return { restart: true, backoffMs: Math.min(maxBackoffMs, backoffMs * 2 ** (this.#times.length - 1)) };
  }
}
