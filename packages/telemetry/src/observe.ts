import {
  type Attributes,
  type BatchObservableResult,
  type Meter,
  metrics,
  type ObservableGauge,
} from '@opentelemetry/api';
import type { CapabilityRecord, LatencyStats, NodeInspection } from '@stitch/runtime';

/** What observeNode reads: a started node (Cluster.startNode). */
export interface ObservedNode {
  readonly id: string;
  inspect(): Omit<NodeInspection, 'nodeId'>;
  record(): CapabilityRecord;
}

/** What observeCoordinator reads: Coordinator.metrics() of @stitch/agents. */
export interface ObservedCoordinator {
  metrics(): {
    deploys: number;
    migrations: number;
    operatorsMoved: number;
    movesFailed: number;
    replicasAdded: number;
    replicasRemoved: number;
    leading: boolean;
  };
  /**
   * Names of the deployments it manages, and each one's record: its ops and their replicas, its SLA
   * and the latency its plan estimates (above the SLA under `sla_policy = "best_effort"`).
   */
  readonly deployments: string[];
  deployment(
    name: string,
  ): { ops: { id: string; replicas?: unknown[] }[]; slaMs: number; latencyMs: number } | undefined;
}

/** What observeRequests counts: one request as it ended (RequestOutcome of @stitch/agents). */
export interface ObservedRequest {
  deployment: string;
  slaMs: number;
  ok: boolean;
  latencyMs: number;
  usd: number;
  ops: readonly { id: string; op: string; ms: number }[];
}

const meter = (): Meter => metrics.getMeter('@stitch/telemetry');

/** Histogram buckets of request and operator latencies, ms: 1 ms to a minute. */
const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000];

/**
 * A listener for GraphRunner.onRequest (@stitch/agents) that counts each request by deployment,
 * outcome and whether it answered within the deployment's SLA (so attainment is within ÷ all), its
 * latency, each operator's ask latency (histograms), and the $ its operators accrued.
 */
export function observeRequests(): (request: ObservedRequest) => void {
  const m = meter();
  const requests = m.createCounter('stitch_requests', {
    description:
      'requests run through a deployment, by outcome (ok, failed) and whether they answered within its SLA',
  });
  const latency = m.createHistogram('stitch_request_ms', {
    description: "a request's time from start to answer (or failure), as its runner saw it",
    unit: 'ms',
    advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
  });
  const opLatency = m.createHistogram('stitch_operator_ask_ms', {
    description:
      "an operator's ask within a request, round trip as the runner saw it (its time plus its input and output moving)",
    unit: 'ms',
    advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
  });
  const usd = m.createCounter('stitch_usd_accrued', {
    description: "$ of the operators' time at their device classes' $/h (modelled time on virtual devices)",
  });
  return (r) => {
    const at = { deployment: r.deployment };
    const within = r.ok && r.latencyMs <= r.slaMs;
    requests.add(1, { ...at, outcome: r.ok ? 'ok' : 'failed', within_sla: within ? 'true' : 'false' });
    latency.record(r.latencyMs, at);
    if (r.usd > 0) usd.add(r.usd, at);
    for (const o of r.ops) opLatency.record(o.ms, { ...at, op_id: o.id, op: o.op });
  };
}

/** A summary's median, p99 and maximum as gauge `g`'s quantiles 0.5, 0.99 and 1. */
function observeQuantiles(
  r: BatchObservableResult,
  g: ObservableGauge,
  q: LatencyStats,
  at: Attributes,
): void {
  r.observe(g, q.p50, { ...at, quantile: '0.5' });
  r.observe(g, q.p99, { ...at, quantile: '0.99' });
  r.observe(g, q.max, { ...at, quantile: '1' });
}

/** Slots (a device's, or a bounded actor type's) as gauge `g` by state: total, busy, queued. */
function observeSlots(
  r: BatchObservableResult,
  g: ObservableGauge,
  s: { slots: number; busy: number; queued: number },
  at: Attributes,
): void {
  r.observe(g, s.slots, { ...at, state: 'total' });
  r.observe(g, s.busy, { ...at, state: 'busy' });
  r.observe(g, s.queued, { ...at, state: 'queued' });
}

/**
 * Per-actor turn latency (the mailbox's recent p50/p99/max, a summary), mailbox depth and durable
 * message counts, the live migrations of the node's actors (counts, and the pauses of recent moves
 * out), and the node's event-loop lag, read from the node whenever the metrics are collected (a
 * scrape).
 */
export function observeNode(node: ObservedNode): void {
  const m = meter();
  const turn = m.createObservableGauge('stitch_actor_turn_ms', {
    description: 'handler duration of recent turns per actor, by quantile (0.5, 0.99, 1 = max)',
    unit: 'ms',
  });
  const depth = m.createObservableGauge('stitch_actor_mailbox_depth', {
    description: 'messages waiting in the actor mailbox',
  });
  const processed = m.createObservableCounter('stitch_actor_messages_processed', {
    description: 'messages the actor has handled',
  });
  const rejected = m.createObservableCounter('stitch_actor_messages_rejected', {
    description: 'messages the actor mailbox refused (full, or the sender over its share)',
  });
  const actorShed = m.createObservableCounter('stitch_actor_messages_shed', {
    description:
      'fast-mode messages to the actor its node answered Overloaded while it shed load (never queued)',
  });
  const durable = m.createObservableCounter('stitch_actor_durable_messages', {
    description:
      'durable messages the actor was handed, by kind: delivered, redelivered (again after ack_wait, a nak or a restart), duplicates_skipped (already applied: acknowledged, not applied again)',
  });
  const unconfirmed = m.createObservableGauge('stitch_actor_durable_unconfirmed', {
    description:
      "committed durable messages the actor's record lists by stream sequence until its consumer's ack floor confirms them",
  });
  const slots = m.createObservableGauge('stitch_device_slots', {
    description: "a device's execution slots by state: total, busy (held), queued (work waiting for one)",
  });
  const typeSlots = m.createObservableGauge('stitch_actor_type_slots', {
    description:
      "an actor type's turns on the node under its concurrencyPerNode bound, by state: total (the bound), busy (running), queued (waiting for one)",
  });
  const migrations = m.createObservableCounter('stitch_node_migrations', {
    description:
      "live migrations of the node's actors, by kind: out (moved to another node), in (moved here), failed (moves out that left the actor here)",
  });
  const underWay = m.createObservableGauge('stitch_node_migrations_under_way', {
    description: "live migrations of the node's actors to other nodes running now",
  });
  const into = m.createObservableGauge('stitch_node_migrations_into', {
    description:
      'live migrations into the node by state: under_way (each holding one of its places), waiting (for a place)',
  });
  const paused = m.createObservableGauge('stitch_node_migration_paused_ms', {
    description:
      'how long recent migrations out of the node paused their actor, by quantile (0.5, 0.99, 1 = max)',
    unit: 'ms',
  });
  const shed = m.createObservableCounter('stitch_node_messages_shed', {
    description: 'fast-mode messages the node answered Overloaded while it shed load (NodeOptions.shedding)',
  });
  const shedding = m.createObservableGauge('stitch_node_shedding', {
    description: 'whether the node sheds load now: 1, else 0',
  });
  const reminders = m.createObservableCounter('stitch_node_reminders', {
    description:
      'reminder ticks the node sent, by kind: fired (asked and advanced), retried (an ask that reached no handler, tried again)',
  });
  const remindersOwned = m.createObservableGauge('stitch_node_reminders_owned', {
    description: 'reminders the node sends (of all in the bucket, shared out among the live nodes)',
  });
  const lag = m.createObservableGauge('stitch_node_event_loop_lag_ms', {
    description: 'event-loop lag of the node process, by quantile (0.99, 1 = max)',
    unit: 'ms',
  });
  m.addBatchObservableCallback(
    (r) => {
      const inspection = node.inspect();
      for (const a of inspection.actors) {
        const at: Attributes = { actor_type: a.type, actor_id: a.id, node_id: a.nodeId };
        observeQuantiles(r, turn, a.mailbox.turnMs, at);
        r.observe(depth, a.mailbox.depth, at);
        r.observe(processed, a.mailbox.processed, at);
        r.observe(rejected, a.mailbox.rejected, at);
        if (a.mailbox.shed !== undefined) r.observe(actorShed, a.mailbox.shed, at);
        // Actors that never had a durable message have no series of these.
        const d = a.durable;
        if (!d || d.delivered === 0) continue;
        r.observe(durable, d.delivered, { ...at, kind: 'delivered' });
        r.observe(durable, d.redelivered, { ...at, kind: 'redelivered' });
        r.observe(durable, d.duplicatesSkipped, { ...at, kind: 'duplicates_skipped' });
        if (d.unconfirmed !== undefined) r.observe(unconfirmed, d.unconfirmed, at);
      }
      const { eventLoopLagMs, load } = node.record();
      for (const d of load.devices ?? [])
        observeSlots(r, slots, d, { node_id: node.id, device: d.device, modelled: d.modelled });
      for (const [type, s] of Object.entries(inspection.typeSlots ?? {}))
        observeSlots(r, typeSlots, s, { node_id: node.id, actor_type: type });
      const moved = inspection.migrations;
      if (moved) {
        const at = { node_id: node.id };
        r.observe(migrations, moved.out, { ...at, kind: 'out' });
        r.observe(migrations, moved.in, { ...at, kind: 'in' });
        r.observe(migrations, moved.failed, { ...at, kind: 'failed' });
        if (moved.underWay !== undefined) r.observe(underWay, moved.underWay, at);
        if (moved.arriving !== undefined) r.observe(into, moved.arriving, { ...at, state: 'under_way' });
        if (moved.waiting !== undefined) r.observe(into, moved.waiting, { ...at, state: 'waiting' });
        if (moved.out > 0) observeQuantiles(r, paused, moved.pausedMs, at);
      }
      if (inspection.shedding) {
        r.observe(shed, inspection.shedding.shed, { node_id: node.id });
        r.observe(shedding, inspection.shedding.reason === undefined ? 0 : 1, { node_id: node.id });
      }
      if (inspection.reminders) {
        const { fired, retried, owned } = inspection.reminders;
        r.observe(reminders, fired, { node_id: node.id, kind: 'fired' });
        r.observe(reminders, retried, { node_id: node.id, kind: 'retried' });
        r.observe(remindersOwned, owned, { node_id: node.id });
      }
      r.observe(lag, eventLoopLagMs.p99, { node_id: node.id, quantile: '0.99' });
      r.observe(lag, eventLoopLagMs.max, { node_id: node.id, quantile: '1' });
    },
    [
      turn,
      depth,
      processed,
      rejected,
      actorShed,
      durable,
      unconfirmed,
      slots,
      typeSlots,
      migrations,
      underWay,
      into,
      paused,
      shed,
      shedding,
      reminders,
      remindersOwned,
      lag,
    ],
  );
}

/**
 * Deployments, migrations, operators moved and replicas changed by the coordinator, whether it leads,
 * each deployment's SLA and planned latency, and each operator's activations in the deployments it
 * manages.
 */
export function observeCoordinator(coordinator: ObservedCoordinator): void {
  const m = meter();
  const counters = {
    deploys: m.createObservableCounter('stitch_coordinator_deploys', { description: 'graphs deployed' }),
    migrations: m.createObservableCounter('stitch_coordinator_migrations', {
      description: 're-plans that moved operators',
    }),
    operatorsMoved: m.createObservableCounter('stitch_coordinator_operators_moved', {
      description: 'operators moved to another node',
    }),
    movesFailed: m.createObservableCounter('stitch_coordinator_moves_failed', {
      description: 'operator moves that failed (retried by a later re-plan)',
    }),
    replicasAdded: m.createObservableCounter('stitch_coordinator_replicas_added', {
      description: 'operator replicas the control loop added',
    }),
    replicasRemoved: m.createObservableCounter('stitch_coordinator_replicas_removed', {
      description: 'operator replicas removed (scaled in, or left on a gone node or class)',
    }),
  };
  const leading = m.createObservableGauge('stitch_coordinator_leading', {
    description: '1 while this coordinator holds the leader lease',
  });
  const slaMs = m.createObservableGauge('stitch_deployment_sla_ms', {
    description: "a deployment's SLA: its graph's end-to-end latency bound per request",
    unit: 'ms',
  });
  const plannedMs = m.createObservableGauge('stitch_deployment_planned_ms', {
    description:
      "the end-to-end latency a deployment's current plan estimates; above its SLA when no placement meets it (best effort)",
    unit: 'ms',
  });
  const activations = m.createObservableGauge('stitch_operator_activations', {
    description:
      "an operator's activations in its deployment's record: 1, or 1 + the replicas the control loop runs",
  });
  m.addBatchObservableCallback(
    (r) => {
      const now = coordinator.metrics();
      for (const [name, counter] of Object.entries(counters))
        r.observe(counter, now[name as keyof typeof counters]);
      r.observe(leading, now.leading ? 1 : 0);
      for (const deployment of coordinator.deployments) {
        const d = coordinator.deployment(deployment);
        if (!d) continue;
        r.observe(slaMs, d.slaMs, { deployment });
        r.observe(plannedMs, d.latencyMs, { deployment });
        for (const op of d.ops)
          r.observe(activations, 1 + (op.replicas?.length ?? 0), { deployment, op_id: op.id });
      }
    },
    [...Object.values(counters), leading, slaMs, plannedMs, activations],
  );
}
