/** Latencies kept for the Retry-After estimate. */
const WINDOW = 64;

/**
 * Bounds the requests in flight per deployment. The graph's entry actor queues at most a quarter of
 * its mailbox (256 by default) from one sender, and this server is one sender: admitting fewer keeps
 * excess requests out of the cluster, answered 429 at once instead of queued behind the others.
 */
export class Admission {
  readonly limit: number;
  readonly #inFlight = new Map<string, number>();
  readonly #latencies: number[] = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  enter(model: string): boolean {
    const n = this.#inFlight.get(model) ?? 0;
    if (n >= this.limit) return false;
    this.#inFlight.set(model, n + 1);
    return true;
  }

  leave(model: string, latencyMs?: number): void {
    const n = (this.#inFlight.get(model) ?? 1) - 1;
    if (n <= 0) this.#inFlight.delete(model);
    else this.#inFlight.set(model, n);
    if (latencyMs !== undefined) {
      this.#latencies.push(latencyMs);
      if (this.#latencies.length > WINDOW) this.#latencies.shift();
    }
  }

  inFlight(model: string): number {
    return this.#inFlight.get(model) ?? 0;
  }

  /** Seconds a refused client should wait: the median recent request latency, at least 1. */
  retryAfterS(): number {
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
    return Math.max(1, Math.ceil(median / 1000));
  }
}
