// What a chaos scenario reports, from the client's record of every request and the actors' applied
// counters read after the run. Pure, so that the rules are tested on their own.

/** One request as the load client saw it. Times are ms since the epoch (one machine, one clock). */
export interface RequestRecord {
  /** The idempotency key (the same on every retry). */
  key: string;
  sent: number;
  /** When it succeeded or was given up. */
  done: number;
  /** Asks made, the first included. */
  attempts: number;
  ok: boolean;
  /** What the actor answered: how many times it had applied the key (1 unless duplicated). */
  reply?: number;
}

export interface ScenarioTimes {
  /** When the fault was injected. */
  faultAt: number;
  /** When it was healed; undefined when the scenario does not heal it. */
  healAt?: number;
  /** The client's ask timeout: a request sent this long before the fault may have been in flight. */
  timeoutMs: number;
  /**
   * A first attempt slower than this counts as a disruption. Default: 5 × the p99 latency of the
   * requests sent in the half of the run before the fault closest to it, at least 100 ms and at most
   * the ask timeout — a request that slow was held up by the fault, not by the steady state.
   */
  slowMs?: number;
}

export interface ScenarioResult {
  scenario: string;
  sent: number;
  succeeded: number;
  failed: number;
  /** Succeeded, but its key is in no actor's applied counters. */
  lost: number;
  /** Applications beyond the first, over all keys (counters), or answers saying more than one. */
  duplicated: number;
  /**
   * From the fault until the last request disrupted by it (sent before the heal) was answered:
   * disrupted = failed, retried, or slower than `slow_ms`.
   */
  recovery_s: number;
  /** Same, from the heal, for requests sent after it. */
  recovery_after_heal_s: number;
  /** p99 latency of the requests sent between the fault and the heal (retries included). */
  p99_ms_during: number;
  p50_ms_before: number;
  /** The latency above which a first answer counted as disrupted (ScenarioTimes.slowMs). */
  slow_ms: number;
  /** Requests that needed more than one ask. */
  retried: number;
  /** Given up by the client but applied anyway: not lost, the caller just never heard. */
  applied_unacknowledged: number;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const disrupted = (r: RequestRecord, slowMs: number) => !r.ok || r.attempts > 1 || r.done - r.sent > slowMs;

/** See ScenarioTimes.slowMs. */
function steadySlowMs(records: RequestRecord[], t: ScenarioTimes): number {
  const first = Math.min(...records.map((r) => r.sent));
  const from = t.faultAt - (t.faultAt - first) / 2;
  const steady = records.filter((r) => r.ok && r.attempts === 1 && r.sent >= from && r.sent < t.faultAt);
  const p99 = percentile(
    steady.map((r) => r.done - r.sent),
    99,
  );
  return Math.min(t.timeoutMs, Math.max(100, 5 * p99));
}

/** Seconds from `from` until the last disrupted request of `rs` was done; 0 when none was. */
function recoveryOf(rs: RequestRecord[], from: number, slowMs: number): number {
  let last = from;
  for (const r of rs) if (disrupted(r, slowMs)) last = Math.max(last, r.done);
  return Math.round(last - from) / 1000;
}

/**
 * Counts of one scenario. `applied` holds every actor's counters (key → times applied). A request
 * counts toward the fault's recovery when it was sent from one slow-threshold before the fault (it may
 * have been in flight) until the heal, and toward the heal's after that.
 */
export function summarize(
  scenario: string,
  records: RequestRecord[],
  applied: Record<string, number>[],
  t: ScenarioTimes,
): ScenarioResult {
  const times = new Map<string, number>();
  let duplicated = 0;
  for (const counters of applied)
    for (const [key, n] of Object.entries(counters)) {
      times.set(key, (times.get(key) ?? 0) + n);
    }
  for (const n of times.values()) duplicated += Math.max(0, n - 1);
  const ok = records.filter((r) => r.ok);
  const lost = ok.filter((r) => (times.get(r.key) ?? 0) === 0).length;
  // An answer above 1 that the counters do not show (they would, unless state went back) is a duplicate too.
  const answeredTwice = ok.filter((r) => (r.reply ?? 1) > 1 && (times.get(r.key) ?? 0) <= 1).length;
  const healAt = t.healAt ?? Number.POSITIVE_INFINITY;
  const slowMs = t.slowMs ?? steadySlowMs(records, t);
  const faultWindow = records.filter((r) => r.sent >= t.faultAt - t.timeoutMs && r.sent < healAt);
  const healWindow = records.filter((r) => r.sent >= healAt);
  const during = ok.filter((r) => r.sent >= t.faultAt && r.sent < healAt).map((r) => r.done - r.sent);
  const before = ok.filter((r) => r.sent < t.faultAt).map((r) => r.done - r.sent);
  return {
    scenario,
    sent: records.length,
    succeeded: ok.length,
    failed: records.length - ok.length,
    lost,
    duplicated: duplicated + answeredTwice,
    recovery_s: recoveryOf(faultWindow, t.faultAt, slowMs),
    recovery_after_heal_s: t.healAt === undefined ? 0 : recoveryOf(healWindow, t.healAt, slowMs),
    p99_ms_during: Math.round(percentile(during, 99)),
    p50_ms_before: Math.round(percentile(before, 50)),
    slow_ms: Math.round(slowMs),
    retried: records.filter((r) => r.attempts > 1).length,
    applied_unacknowledged: records.filter((r) => !r.ok && (times.get(r.key) ?? 0) > 0).length,
  };
}
