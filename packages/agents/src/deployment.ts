// A deployment as the coordinator keeps it in KV, what it measures and the migrations it reports.
import type { Cluster } from '@stitch/runtime';
import type { PlanOutcome } from './placement.js';

/** A measured op run, as the graph runner reports it. */
export interface Measurement {
  deployment: string;
  opId: string;
  ms: number;
  modelled: boolean;
}

/** The record kept in KV (`stitch_<cluster>_deployments`, key = deployment name). */
export interface Deployment extends PlanOutcome {
  name: string;
  /** The graph as deployed, so a restarted coordinator can plan it again. */
  mlir: string;
  slaMs: number;
  version: number;
  natsUrl: string;
  cluster: string;
}

export function deploymentsBucketName(cluster: string): string {
  return `stitch_${cluster}_deployments`;
}

/** The current record of a deployment, as the coordinator keeps it in KV (for clients in other processes). */
export async function loadDeployment(cluster: Cluster, name: string): Promise<Deployment | undefined> {
  const kv = await cluster.kv(deploymentsBucketName(cluster.name));
  const e = await kv.get(name);
  return e?.operation === 'PUT' ? e.json<Deployment>() : undefined;
}

/**
 * How one operator moved. `live`: handed over while it served (precopyMs copying its state, pausedMs
 * from its pause until the target owned it, while its messages waited: MigrationReport.pausedMs);
 * `restart`: stopped on its source (stopMs, the node was gone or the live move failed) and spawned on
 * the target (spawnMs). configureMs: telling it its new device afterwards.
 */
export interface MovePhases {
  how: 'live' | 'restart';
  precopyMs: number;
  pausedMs: number;
  stopMs: number;
  spawnMs: number;
  configureMs: number;
}

/** A migration the coordinator carried out: why, what moved where, how long the operators were away. */
export interface MigrationEvent {
  deployment: string;
  reason: string;
  moved: {
    opId: string;
    from: string;
    to: string;
    fromClass: string;
    toClass: string;
    phases?: MovePhases;
  }[];
  ms: number;
  at: number;
}

export function isMeasurement(m: unknown): m is Measurement {
  const x = m as Partial<Measurement> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.deployment === 'string' &&
    typeof x.opId === 'string' &&
    Number.isFinite(x.ms)
  );
}
