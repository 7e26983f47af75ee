/** The median, p99 and largest of some recent durations, ms (to the µs); zeros when there are none. */
export interface LatencyStats {
  p50: number;
  p99: number;
  max: number;
}

export function latencyStats(samples: Float64Array): LatencyStats {
  if (samples.length === 0) return { p50: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: toMicros(at(0.5)), p99: toMicros(at(0.99)), max: toMicros(sorted[sorted.length - 1]!) };
}

/** Milliseconds rounded to the microsecond. */
export function toMicros(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
