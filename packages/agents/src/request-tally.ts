/** What a client tells the coordinator about one request as it ended (`observe`'s `request`). */
export interface RequestSummary {
  deployment: string;
  ok: boolean;
  latencyMs: number;
  /** $ its operators accrued (0 when it failed). */
  usd: number;
}

/** Requests of one deployment the coordinator was told of, since it started. */
export interface RequestCounts {
  answered: number;
  failed: number;
  /** Answered within the deployment's SLA. */
  withinSla: number;
  usd: number;
}

/** Whether `s` is a RequestSummary: it arrives from any client on the bus. */
export function isRequestSummary(s: unknown): s is RequestSummary {
  const x = s as Partial<RequestSummary> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.deployment === 'string' &&
    typeof x.ok === 'boolean' &&
    typeof x.latencyMs === 'number' &&
    Number.isFinite(x.latencyMs) &&
    x.latencyMs >= 0 &&
    typeof x.usd === 'number' &&
    Number.isFinite(x.usd) &&
    x.usd >= 0
  );
}

/**
 * Counts of the requests clients report, per deployment, against its SLA (`slaMs`). Kept only for
 * deployments the caller names as known, so the map is bounded by the deployments.
 */
export class RequestTally {
  readonly #counts = new Map<string, RequestCounts>();

  add(s: RequestSummary, slaMs: number): void {
    const c = this.#counts.get(s.deployment) ?? { answered: 0, failed: 0, withinSla: 0, usd: 0 };
    if (s.ok) {
      c.answered++;
      if (s.latencyMs <= slaMs) c.withinSla++;
      c.usd += s.usd;
    } else c.failed++;
    this.#counts.set(s.deployment, c);
  }

  snapshot(): Record<string, RequestCounts> {
    return Object.fromEntries([...this.#counts].map(([d, c]) => [d, { ...c }]));
  }
}
