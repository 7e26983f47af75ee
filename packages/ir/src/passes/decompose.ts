import { type Graph, NameGen } from '../graph.js';
import type { DecomposeOptions, Registry } from '../registry.js';
import { rewriteOps } from './rewrite.js';

export const DEFAULT_DECOMPOSE: DecomposeOptions = { tp: 1, ep: 1, layerGroups: 4 };

/** Applies each registered op's decomposition (e.g. llm.call → tokenize … detokenize), in every region. */
export function decompose(graph: Graph, registry: Registry, options: Partial<DecomposeOptions> = {}): Graph {
  const ctx = { names: new NameGen(graph.ops), options: { ...DEFAULT_DECOMPOSE, ...options } };
  return { ops: rewriteOps(graph.ops, (op) => registry.get(op.name)?.decompose?.(op, ctx) ?? [op]) };
}
