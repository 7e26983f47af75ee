import { intAttr } from '../attrs.js';
import { IrError, IrErrorCode } from '../errors.js';
import { type Graph, NameGen, type Op } from '../graph.js';
import { cloneOps, rewriteOps, type Subst } from './rewrite.js';

/**
 * Replaces every `agent.loop` by `max_iterations` copies of its body, chained through the carried
 * values; users of the loop results then use the last iteration's yields. Inner loops go first.
 */
export function unrollLoops(graph: Graph): Graph {
  const names = new NameGen(graph.ops);
  const expand = (op: Op, subst: Subst): readonly Op[] => {
    if (op.name !== 'agent.loop') return [op];
    const bound = intAttr(op.attrs, 'max_iterations');
    const body = op.regions[0]?.blocks[0];
    if (bound === undefined || bound < 1 || !body) {
      throw new IrError(IrErrorCode.Pass, [
        {
          message: 'unroll-loops: agent.loop has no max_iterations bound; run verify first',
          ...(op.loc ? { loc: op.loc } : {}),
        },
      ]);
    }
    const out: Op[] = [];
    let carried = op.operands;
    for (let k = 0; k < bound; k++) {
      const map: Subst = new Map(body.args.map((a, i) => [a.id, carried[i]!]));
      const copies = cloneOps(body.ops, map, names, `it${k}`);
      const yielded = copies[copies.length - 1];
      if (yielded?.name !== 'agent.yield') {
        throw new IrError(IrErrorCode.Pass, [
          {
            message: 'unroll-loops: loop body must end with agent.yield',
            ...(op.loc ? { loc: op.loc } : {}),
          },
        ]);
      }
      out.push(...copies.slice(0, -1));
      carried = yielded.operands;
    }
    op.results.forEach((r, i) => {
      subst.set(r.id, carried[i]!);
    });
    return out;
  };
  return { ops: rewriteOps(graph.ops, expand) };
}
