import type { ActorRef } from '@stitch/runtime';
import type { RequestOutcome } from './runner.js';

/**
 * A listener for GraphRunner.onRequest that tells the coordinator actor each request's measurements
 * (its ops' times, which correct the estimates) and its outcome, which the coordinator counts against
 * the deployment's SLA (`status` → `requests`; the dashboard's attainment). Told, not asked: a
 * request never waits for the coordinator, and a coordinator that is away loses only its counts.
 */
export function reportRequests(coordinator: Pick<ActorRef, 'tell'>): (outcome: RequestOutcome) => void {
  return (o) => {
    const request = { deployment: o.deployment, ok: o.ok, latencyMs: o.latencyMs, usd: o.usd };
    coordinator.tell({ type: 'observe', measurements: o.measurements, request }).catch(() => undefined);
  };
}
