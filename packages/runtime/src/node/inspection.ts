import type { ActorInspection } from '../actor/definition.js';

/** What a node hosts, as `cluster.inspectNode` returns it. */
export interface NodeInspection {
  nodeId: string;
  actors: ActorInspection[];
}

const COUNTERS = ['depth', 'running', 'accepted', 'processed', 'rejected', 'busyMs'] as const;

/**
 * Whether a reply on a node's query subject is an inspection of node `nodeId`: anyone allowed to
 * answer there could send something else, and a control loop would act on its numbers.
 */
export function isNodeInspection(v: unknown, nodeId: string): v is NodeInspection {
  const r = v as Partial<NodeInspection> | null;
  if (typeof r !== 'object' || r === null || r.nodeId !== nodeId || !Array.isArray(r.actors)) return false;
  return r.actors.every((a) => {
    const m = (a as Partial<ActorInspection> | null)?.mailbox as Record<string, unknown> | undefined;
    const wait = (a as Partial<ActorInspection> | null)?.slotWaitMs;
    return (
      typeof a?.type === 'string' &&
      typeof a.id === 'string' &&
      (wait === undefined || (typeof wait === 'number' && Number.isFinite(wait) && wait >= 0)) &&
      typeof m === 'object' &&
      m !== null &&
      COUNTERS.every((k) => typeof m[k] === 'number' && Number.isFinite(m[k]) && (m[k] as number) >= 0)
    );
  });
}
