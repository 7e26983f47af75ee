import type { ActorInspection } from '@stitch/runtime';
import type { DashboardState, NodeView } from '@stitch/serve';
import { alignColumns } from './columns.js';

/** Migrations listed at most (the newest; `--json` has all the coordinator keeps). */
export const STATUS_MIGRATIONS = 5;
/** Actors listed per node at most with `--actors` (`--json` has them all). */
export const STATUS_ACTORS_PER_NODE = 50;

const MIB = 1024 * 1024;

/** A table with its head, the columns in `right` aligned to the right; no blanks end a line. */
function columns(head: string[], rows: string[][], right: ReadonlySet<number>): string[] {
  return alignColumns([head, ...rows], (c) => right.has(c)).map((line) => line.trimEnd());
}

/** What a node is doing besides serving: what callers and the coordinator avoid it for. */
function nodeState(n: NodeView): string {
  const states = [
    n.healthy ? 'healthy' : 'unhealthy',
    ...(n.draining ? ['draining'] : []),
    ...(n.shedding ? ['shedding load'] : []),
  ];
  return states.join(', ');
}

export type ClusterStatus = Omit<DashboardState, 'history'>;

/** `stitch status` as text: the nodes, each deployment's operators, the coordinator and its latest moves. */
export function statusText(s: ClusterStatus, coordinatorId: string): string[] {
  const out: string[] = [
    `cluster "${s.cluster}" at ${new Date(s.at).toISOString()}: ${s.nodes.length} node(s), ${s.deployments.length} deployment(s)`,
  ];
  if (s.coordinator.ok) {
    const m = s.coordinator.metrics;
    out.push(
      `coordinator ${coordinatorId}: ${m.leading ? `leads (epoch ${m.epoch})` : 'stands by'}; ${m.migrations} migration(s), ${m.operatorsMoved} operator(s) moved (${m.operatorsMovedLive} live), ${m.movesFailed} move(s) failed`,
    );
  } else out.push(`coordinator ${coordinatorId}: ${s.coordinator.error}`);
  if (s.sla.answered + s.sla.failed > 0)
    out.push(
      `requests reported: ${s.sla.answered} answered (${s.sla.withinSla} within SLA), ${s.sla.failed} failed`,
    );
  out.push('');
  if (s.nodes.length === 0)
    out.push(`no live node in cluster "${s.cluster}": is it the name the nodes were given (--name)?`);
  else
    out.push(
      ...columns(
        ['node', 'device', 'state', 'actors', 'queued', 'running', 'lag p99 ms', 'rss MiB', 'host'],
        s.nodes.map((n) => [
          n.id,
          n.modelled ? `${n.classId} (modelled)` : n.classId,
          nodeState(n),
          String(n.load.actors),
          String(n.load.queued),
          String(n.load.running),
          n.lagP99Ms.toFixed(1),
          (n.rssBytes / MIB).toFixed(0),
          `${n.host} pid ${n.pid}`,
        ]),
        new Set([3, 4, 5, 6, 7]),
      ),
    );
  for (const d of s.deployments) {
    out.push('');
    out.push(
      `deployment ${d.name}: SLA ${d.slaMs} ms, planned ${d.latencyMs.toFixed(1)} ms, $${d.usdPerRequest.toExponential(2)} per request (${d.solver})`,
    );
    out.push(
      ...columns(
        ['op', 'kind', 'device', 'node', 'replicas', 'est. ms', 'queued', 'processed'],
        d.ops.map((o) => [
          o.id,
          o.kind,
          o.modelled ? `${o.classId} (modelled)` : o.classId,
          o.node,
          o.replicas.length > 0 ? o.replicas.join(',') : '-',
          o.estimatedMs.toFixed(2),
          o.mailbox ? String(o.mailbox.depth) : '?',
          o.mailbox ? String(o.mailbox.processed) : '?',
        ]),
        new Set([5, 6, 7]),
      ).map((l) => `  ${l}`),
    );
  }
  if (s.coordinator.ok && s.coordinator.migrations.length > 0) {
    const all = s.coordinator.migrations;
    const shown = all.slice(-STATUS_MIGRATIONS);
    out.push('');
    out.push(`migrations (the last ${shown.length} of ${all.length}):`);
    for (const m of shown)
      out.push(
        `  ${new Date(m.at).toISOString()} ${m.deployment}: ${m.reason}: ${m.moved
          .map((x) => `${x.opId} ${x.from}→${x.to}${x.phases ? ` (${x.phases.how})` : ''}`)
          .join(', ')} in ${m.ms.toFixed(0)} ms`,
      );
  }
  return out;
}

/**
 * `stitch status --actors`: every activation on each node (null: the node did not answer its
 * inspection in time), at most STATUS_ACTORS_PER_NODE a node.
 */
export function actorsText(byNode: Record<string, ActorInspection[] | null>): string[] {
  const out: string[] = [];
  for (const [nodeId, actors] of Object.entries(byNode)) {
    out.push('');
    if (actors === null) {
      out.push(`actors on ${nodeId}: the node did not answer its inspection`);
      continue;
    }
    const shown = [...actors]
      .sort((a, b) => a.type.localeCompare(b.type) || a.id.localeCompare(b.id))
      .slice(0, STATUS_ACTORS_PER_NODE);
    out.push(`actors on ${nodeId} (${actors.length}):`);
    if (shown.length === 0) continue;
    out.push(
      ...columns(
        ['type', 'id', 'status', 'epoch', 'restarts', 'queued', 'running', 'processed', 'rejected', 'shed'],
        shown.map((a) => [
          a.type,
          a.id,
          a.status,
          String(a.epoch),
          String(a.restarts),
          String(a.mailbox.depth),
          String(a.mailbox.running),
          String(a.mailbox.processed),
          String(a.mailbox.rejected),
          // A node of an earlier version does not count them.
          a.mailbox.shed === undefined ? '-' : String(a.mailbox.shed),
        ]),
        new Set([3, 4, 5, 6, 7, 8, 9]),
      ).map((l) => `  ${l}`),
    );
    if (actors.length > shown.length)
      out.push(`  … and ${actors.length - shown.length} more (--json lists them all)`);
  }
  return out;
}
