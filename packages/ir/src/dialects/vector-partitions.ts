import { int, intAttr } from '../attrs.js';
import { makeOp, type Op } from '../graph.js';
import type { DecomposeContext } from '../registry.js';

/** Partitions a vector search may have: each is an operator actor holding its share of the keys. */
const MAX_VECTOR_PARTITIONS = 64;

/** Problems with a vector search's `partitions` / `partition` attributes, as verify reports them. */
export function checkPartitions(op: Op): string[] {
  const count = intAttr(op.attrs, 'partitions');
  const part = intAttr(op.attrs, 'partition');
  const out: string[] = [];
  if (count !== undefined && (count < 1 || count > MAX_VECTOR_PARTITIONS))
    out.push(`partitions = ${count} is not in 1..${MAX_VECTOR_PARTITIONS}`);
  if (part !== undefined && (count === undefined || part < 0 || part >= count))
    out.push(`partition = ${part} needs partitions > ${part} beside it (partitions counts from 1)`);
  return out;
}

/**
 * memory.vector_search {partitions = P} → P searches, partition i holding the keys
 * `vectorPartition(key, P) = i` (n_vectors / P of them, each its own operator actor), then
 * memory.vector_merge: the k nearest of their P top-k lists. The merge keeps the search's result id.
 */
export function decomposeSearch(op: Op, ctx: DecomposeContext): readonly Op[] | undefined {
  const count = intAttr(op.attrs, 'partitions') ?? 1;
  if (count <= 1 || intAttr(op.attrs, 'partition') !== undefined) return undefined;
  const result = op.results[0]!;
  const base = result.id.replace(/#/g, '_');
  const vectors = Math.ceil((intAttr(op.attrs, 'n_vectors') ?? 0) / count);
  const partials = Array.from({ length: count }, (_, i) => ({
    id: ctx.names.fresh(`${base}_p${i}`),
    type: result.type,
  }));
  const searches = partials.map((v, i) =>
    makeOp('memory.vector_search', {
      operands: op.operands,
      results: [v],
      attrs: { ...op.attrs, partition: int(i), n_vectors: int(vectors) },
      ...(op.loc ? { loc: op.loc } : {}),
    }),
  );
  const k = op.attrs.k!;
  const merge = makeOp('memory.vector_merge', {
    operands: partials,
    results: [result],
    attrs: { k, partitions: int(count) },
    ...(op.loc ? { loc: op.loc } : {}),
  });
  return [...searches, merge];
}
