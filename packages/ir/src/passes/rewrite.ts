import { makeOp, type NameGen, type Op, type Region, type Value } from '../graph.js';

/** Value substitution applied to operands: ids in the map are replaced by their value. */
export type Subst = Map<string, Value>;

export function substitute(op: Op, subst: Subst): Op {
  if (subst.size === 0) return op;
  const operands = op.operands.map((v) => subst.get(v.id) ?? v);
  const regions = op.regions.map((r) => ({
    blocks: r.blocks.map((b) => ({ args: b.args, ops: b.ops.map((o) => substitute(o, subst)) })),
  }));
  return makeOp(op.name, { ...op, operands, regions });
}

/**
 * Rewrites every block of a graph bottom-up: `fn` sees each op (regions already rewritten) and
 * returns its replacements; `subst` collects renamed values for later operands.
 */
export function rewriteOps(
  ops: readonly Op[],
  fn: (op: Op, subst: Subst) => readonly Op[],
  subst: Subst = new Map(),
): Op[] {
  const out: Op[] = [];
  for (const original of ops) {
    const op = substitute(original, subst);
    const regions: Region[] = op.regions.map((r) => ({
      blocks: r.blocks.map((b) => ({ args: b.args, ops: rewriteOps(b.ops, fn, subst) })),
    }));
    // A loop, not a spread: a decomposition may return more ops than a call takes arguments.
    for (const r of fn(makeOp(op.name, { ...op, regions }), subst)) out.push(r);
  }
  return out;
}

/** Copies ops with fresh result and block-argument names (`<id>_<suffix>`); `map` renames operands. */
export function cloneOps(ops: readonly Op[], map: Subst, names: NameGen, suffix: string): Op[] {
  const fresh = (v: Value): Value => {
    const copy = { id: names.fresh(`${v.id.replace(/#/g, '_')}_${suffix}`), type: v.type };
    map.set(v.id, copy);
    return copy;
  };
  return ops.map((op) => {
    const operands = op.operands.map((v) => map.get(v.id) ?? v);
    const regions = op.regions.map((r) => ({
      blocks: r.blocks.map((b) => ({ args: b.args.map(fresh), ops: cloneOps(b.ops, map, names, suffix) })),
    }));
    return makeOp(op.name, { ...op, operands, regions, results: op.results.map(fresh) });
  });
}
