import { makeOp, type Op } from '../graph.js';

/** Rewrites each block's op list as a whole (inner blocks first). */
export function rewriteBlocks(ops: readonly Op[], fn: (ops: readonly Op[]) => Op[]): Op[] {
  const inner = ops.map((op) =>
    op.regions.length === 0
      ? op
      : makeOp(op.name, {
          ...op,
          regions: op.regions.map((r) => ({
            blocks: r.blocks.map((b) => ({ args: b.args, ops: rewriteBlocks(b.ops, fn) })),
          })),
        }),
  );
  return fn(inner);
}
