// A deployment's record as a caller in another process sees it: read once, then kept current by a KV
// watch, so replicas the coordinator adds or retires reach the caller's next ask.
import type { Cluster } from '@stitch/runtime';
import { type Deployment, deploymentsBucketName } from './deployment.js';
import { AgentsError, AgentsErrorCode } from './errors.js';

export interface DeploymentWatch {
  /** The newest valid record seen. */
  current(): Deployment;
  /** Records written to the bucket under this name that were not deployments (ignored). */
  readonly ignored: number;
  close(): void;
}

const isString = (x: unknown) => typeof x === 'string';

/**
 * Whether a value from the deployments bucket under `name` is a deployment record with what a caller
 * routes by: anyone who may write the bucket can put something else there.
 */
export function isDeploymentRecord(v: unknown, name: string): v is Deployment {
  const d = v as Partial<Deployment> | null;
  if (typeof d !== 'object' || d === null || d.name !== name || !Array.isArray(d.ops)) return false;
  if (typeof d.usdPerHour !== 'object' || d.usdPerHour === null || !Number.isFinite(d.version)) return false;
  return d.ops.every(
    (o) =>
      typeof o === 'object' &&
      o !== null &&
      [o.id, o.actorType, o.actorId, o.node, o.classId].every(isString) &&
      Array.isArray(o.deps) &&
      o.deps.every(isString) &&
      (o.replicas === undefined ||
        (Array.isArray(o.replicas) && o.replicas.every((r) => isString(r?.actorId) && isString(r?.node)))),
  );
}

/**
 * Whether a value from the deployments bucket under `name` is a record a coordinator can take over:
 * what a caller routes by, and the graph, the SLA and the estimates it plans and corrects with.
 */
export function isStoredDeployment(v: unknown, name: string): v is Deployment {
  if (!isDeploymentRecord(v, name) || typeof v.mlir !== 'string' || !(v.slaMs > 0)) return false;
  const raw = v.rawMs as unknown;
  return (
    typeof raw === 'object' &&
    raw !== null &&
    Object.values(raw).every(
      (byClass: unknown) =>
        typeof byClass === 'object' &&
        byClass !== null &&
        // A class an op cannot run on is estimated at Infinity, null once the record went through JSON.
        Object.values(byClass).every((ms) => ms === null || typeof ms === 'number'),
    )
  );
}

/**
 * Follows deployment `name`: resolves once its record is read (DeploymentUnknown when there is none
 * within `timeoutMs`), then swaps in each newer valid record the watch delivers.
 */
export async function watchDeployment(
  cluster: Cluster,
  name: string,
  timeoutMs = 10_000,
): Promise<DeploymentWatch> {
  const kv = await cluster.kv(deploymentsBucketName(cluster.name));
  const it = await kv.watch({ key: name });
  let record: Deployment | undefined;
  let ignored = 0;
  let first: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    first = resolve;
  });
  void (async () => {
    for await (const e of it) {
      try {
        if (e.operation !== 'PUT') continue;
        const v = e.json<unknown>();
        if (!isDeploymentRecord(v, name)) {
          ignored++;
          continue;
        }
        if (!record || v.version >= record.version) record = v;
        first?.();
      } catch {
        ignored++;
      }
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([ready, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    it.stop();
    throw new AgentsError(
      AgentsErrorCode.DeploymentUnknown,
      `no deployment named ${JSON.stringify(name)} in cluster ${cluster.name} after ${timeoutMs} ms; deploy it first`,
    );
  }
  return {
    current: () => record!,
    get ignored() {
      return ignored;
    },
    close: () => it.stop(),
  };
}
