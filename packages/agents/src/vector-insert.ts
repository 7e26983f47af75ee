import type { Cluster } from '@stitch/runtime';
import type { Deployment } from './deployment.js';
import { AgentsError, AgentsErrorCode } from './errors.js';
import type { PlacedOp } from './placement.js';
import { isVectorKey } from './vector-index.js';
import { partitionOf, vectorPartition } from './vector-partitions.js';

/** The vector searches of a deployment that hold the index named `index` (all of them when it has one). */
function searchesOf(d: Deployment, index: string | undefined): PlacedOp[] {
  const all = d.ops.filter((o) => o.op === 'memory.vector_search');
  const names = [...new Set(all.map((o) => String(o.attrs.index)))];
  const name = index ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined)
    throw new AgentsError(
      AgentsErrorCode.VectorInvalid,
      names.length === 0
        ? `deployment ${d.name} has no memory.vector_search op`
        : `deployment ${d.name} searches several indexes (${names.join(', ')}); say which one`,
    );
  const ops = all.filter((o) => o.attrs.index === name);
  if (ops.length === 0)
    throw new AgentsError(
      AgentsErrorCode.VectorInvalid,
      `deployment ${d.name} has no search of index ${name}`,
    );
  return ops;
}

export interface VectorInsert {
  /** Idempotency key: the same insert sent again (a retry) is applied once per partition. */
  rid: string;
  keys: number[];
  /** keys.length vectors of the index's dimension, row after row. */
  vectors: Float32Array;
  /** The graph's `index` name; may be left out when the deployment searches one index. */
  index?: string;
}

/**
 * Inserts vectors into a deployment's index: each key goes to the partition that holds it (see
 * vectorPartition) — one ask per partition that gets any, in parallel. Resolves to the vectors each
 * asked partition now holds.
 */
export async function insertVectors(
  cluster: Cluster,
  d: Deployment,
  insert: VectorInsert,
  options: { timeoutMs?: number } = {},
): Promise<{ partition: number; size: number }[]> {
  const ops = searchesOf(d, insert.index);
  const count = partitionOf(ops[0]!.attrs).partitions;
  if (ops.some((o) => partitionOf(o.attrs).partitions !== count))
    throw new AgentsError(
      AgentsErrorCode.VectorInvalid,
      `the searches of index ${String(ops[0]!.attrs.index)} in ${d.name} are partitioned differently; give them one partitions count`,
    );
  if (!insert.keys.every(isVectorKey))
    throw new AgentsError(AgentsErrorCode.VectorInvalid, 'keys must be integers from 0 to 2^53');
  const dim = insert.vectors.length / Math.max(1, insert.keys.length);
  if (!Number.isInteger(dim))
    throw new AgentsError(
      AgentsErrorCode.VectorInvalid,
      `${insert.keys.length} keys and ${insert.vectors.length} numbers: give one vector per key`,
    );
  const rowsOf = new Map<number, number[]>();
  insert.keys.forEach((key, j) => {
    const p = vectorPartition(key, count);
    const rows = rowsOf.get(p);
    if (rows) rows.push(j);
    else rowsOf.set(p, [j]);
  });
  // Every search of the index holds a copy of its partitions: each gets the partition's rows.
  const asks = ops.flatMap((op) => {
    const p = partitionOf(op.attrs).partition;
    const rows = rowsOf.get(p);
    if (!rows) return [];
    const vectors = new Float32Array(rows.length * dim);
    rows.forEach((j, r) => {
      vectors.set(insert.vectors.subarray(j * dim, (j + 1) * dim), r * dim);
    });
    const ask = cluster
      .ref({ type: op.actorType, id: op.actorId })
      .ask(
        { type: 'insert', rid: `${insert.rid}.p${p}`, keys: rows.map((j) => insert.keys[j]!), vectors },
        { timeoutMs: options.timeoutMs ?? 30_000, idempotencyKey: `${insert.rid}.${op.actorId}` },
      ) as Promise<{ size: number }>;
    return [ask.then((r) => ({ partition: p, size: r.size }))];
  });
  return Promise.all(asks);
}
