import { intAttr } from '../attrs.js';
import { IrError, IrErrorCode, type SourceLoc } from '../errors.js';
import { type Graph, NameGen, type Op } from '../graph.js';
import { cloneOps, rewriteOps, type Subst } from './rewrite.js';

/** Bounds on what `unroll-loops` may build; a loop needing more fails with `IR_PASS` before any copy. */
export interface UnrollLimits {
  /** Largest `max_iterations` a loop may have. */
  readonly maxIterations: number;
  /** Ops in the unrolled graph (all loops together, ops in regions included). */
  readonly maxOps: number;
}

/** What `unroll-loops` allows unless told otherwise (`PassOptions.maxUnrollIterations` / `maxUnrolledOps`). */
export const UNROLL_LIMITS: UnrollLimits = Object.freeze({ maxIterations: 1024, maxOps: 100_000 });

export type UnrollOptions = Partial<UnrollLimits>;

function fail(message: string, loc: SourceLoc | undefined): never {
  throw new IrError(IrErrorCode.Pass, [{ message: `unroll-loops: ${message}`, ...(loc ? { loc } : {}) }]);
}

function resolveLimits(options: UnrollOptions): UnrollLimits {
  const out: Record<string, number> = { ...UNROLL_LIMITS };
  for (const key of Object.keys(UNROLL_LIMITS)) {
    const v = (options as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      fail(`option ${key} must be a positive integer, found ${String(v)}`, undefined);
    out[key] = v;
  }
  return out as unknown as UnrollLimits;
}

/** Ops in a list, those in their regions included. */
function countOps(ops: readonly Op[]): number {
  let n = 0;
  for (const op of ops) {
    n++;
    for (const r of op.regions) for (const b of r.blocks) n += countOps(b.ops);
  }
  return n;
}

/**
 * Replaces every `agent.loop` by `max_iterations` copies of its body, chained through the carried
 * values; users of the loop results then use the last iteration's yields. Inner loops go first.
 * A loop above `maxIterations`, or one whose copies would take the graph past `maxOps`, fails with
 * `IR_PASS` before anything is copied.
 */
export function unrollLoops(graph: Graph, options: UnrollOptions = {}): Graph {
  const limits = resolveLimits(options);
  const names = new NameGen(graph.ops);
  let total = countOps(graph.ops);
  const expand = (op: Op, subst: Subst): readonly Op[] => {
    if (op.name !== 'agent.loop') return [op];
    const bound = intAttr(op.attrs, 'max_iterations');
    const body = op.regions[0]?.blocks[0];
    if (bound === undefined || bound < 1 || !body) {
      fail('agent.loop has no max_iterations bound; run verify first', op.loc);
    }
    if (bound > limits.maxIterations) {
      fail(
        `agent.loop max_iterations = ${bound} is above the limit of ${limits.maxIterations}; ` +
          'lower max_iterations or raise the unroll option maxIterations (PassOptions.maxUnrollIterations)',
        op.loc,
      );
    }
    const bodyOps = countOps(body.ops);
    // Each iteration copies the body minus its agent.yield; the loop op and its body go away.
    const grown = total + Math.max(0, bodyOps - 1) * bound - (1 + bodyOps);
    if (grown > limits.maxOps) {
      fail(
        `unrolling agent.loop (${bound} iterations of ${Math.max(0, bodyOps - 1)} ops) makes the graph more than ` +
          `${limits.maxOps} ops; lower max_iterations or raise the unroll option maxOps (PassOptions.maxUnrolledOps)`,
        op.loc,
      );
    }
    total = grown;
    const out: Op[] = [];
    let carried = op.operands;
    for (let k = 0; k < bound; k++) {
      const map: Subst = new Map(body.args.map((a, i) => [a.id, carried[i]!]));
      const copies = cloneOps(body.ops, map, names, `it${k}`);
      const yielded = copies[copies.length - 1];
      if (yielded?.name !== 'agent.yield') fail('loop body must end with agent.yield', op.loc);
      // A loop, not a spread: a body may hold more ops than a call takes arguments.
      for (let i = 0; i < copies.length - 1; i++) out.push(copies[i]!);
      carried = yielded.operands;
    }
    op.results.forEach((r, i) => {
      subst.set(r.id, carried[i]!);
    });
    return out;
  };
  return { ops: rewriteOps(graph.ops, expand) };
}
