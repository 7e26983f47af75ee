import { type Attr, str } from '../attrs.js';
import { ELEMENTWISE } from '../dialects/nn.js';
import { type Graph, makeOp, NameGen, type Op, singleBlockRegion, type Value, walkOps } from '../graph.js';
import { rewriteBlocks } from './blocks.js';

function useCounts(ops: readonly Op[]): Map<string, number> {
  const uses = new Map<string, number>();
  for (const op of walkOps(ops)) for (const v of op.operands) uses.set(v.id, (uses.get(v.id) ?? 0) + 1);
  return uses;
}

function fusedOp(members: readonly Op[], names: NameGen): Op {
  const inside = new Set(members.flatMap((m) => m.results.map((r) => r.id)));
  const inputs = new Map<string, Value>();
  for (const m of members) for (const v of m.operands) if (!inside.has(v.id)) inputs.set(v.id, v);
  const args = new Map(
    [...inputs.values()].map((v) => [
      v.id,
      { id: names.fresh(`${v.id.replace(/#/g, '_')}_in`), type: v.type },
    ]),
  );
  const last = members[members.length - 1]!;
  // The fused op takes over the chain's result id (its users stay valid); the inner op gets a new one.
  const inner = last.results.map((r) => ({
    id: names.fresh(`${r.id.replace(/#/g, '_')}_inner`),
    type: r.type,
  }));
  const body = members.map((m) =>
    makeOp(m.name, {
      ...m,
      operands: m.operands.map((v) => args.get(v.id) ?? v),
      ...(m === last ? { results: inner } : {}),
    }),
  );
  body.push(makeOp('nn.yield', { operands: inner }));
  const attrs: Record<string, Attr> = { ops: { kind: 'array', items: members.map((m) => str(m.name)) } };
  if (last.attrs['dtype']) attrs['dtype'] = last.attrs['dtype'];
  return makeOp('nn.fused', {
    operands: [...inputs.values()],
    results: last.results,
    attrs,
    regions: [singleBlockRegion([...args.values()], body)],
    ...(last.loc ? { loc: last.loc } : {}),
  });
}

/**
 * Merges chains of elementwise nn ops (a result used only by the next elementwise op) into one
 * `nn.fused` op placed where the chain ends, so intermediate tensors never reach memory.
 */
export function fuse(graph: Graph): Graph {
  const names = new NameGen(graph.ops);
  const uses = useCounts(graph.ops);
  return {
    ops: rewriteBlocks(graph.ops, (ops) => {
      const groupOf = new Map<string, Op[]>();
      const chains: Op[][] = [];
      for (const op of ops) {
        if (!ELEMENTWISE.has(op.name)) continue;
        const feeder = op.operands.find((v) => uses.get(v.id) === 1 && groupOf.has(v.id));
        const chain = feeder ? groupOf.get(feeder.id)! : [];
        if (!feeder) chains.push(chain);
        chain.push(op);
        for (const r of op.results) groupOf.set(r.id, chain);
      }
      const placed = new Map<Op, Op | null>();
      for (const chain of chains) {
        if (chain.length < 2) continue;
        for (const m of chain) placed.set(m, null);
        placed.set(chain[chain.length - 1]!, fusedOp(chain, names));
      }
      return ops.flatMap((op) => {
        const p = placed.get(op);
        return p === undefined ? [op] : p === null ? [] : [p];
      });
    }),
  };
}
