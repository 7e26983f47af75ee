import { annotateDemand } from '../demand.js';
import { IrError, IrErrorCode } from '../errors.js';
import type { Graph } from '../graph.js';
import type { Registry } from '../registry.js';
import { verify } from '../verify.js';
import { decompose } from './decompose.js';
import { fuse } from './fuse.js';
import { unrollLoops } from './unroll.js';

export type PassName = 'decompose' | 'unroll-loops' | 'annotate-demand' | 'fuse' | 'verify';
export const PASS_NAMES: readonly PassName[] = [
  'decompose',
  'unroll-loops',
  'annotate-demand',
  'fuse',
  'verify',
];

export interface PassOptions {
  /** Tensor-parallel degree for `decompose`. @default 1 */
  tp?: number;
  /** Expert-parallel split for `decompose`. @default 1 */
  ep?: number;
  /** Layer groups for sharded prefill in `decompose`. @default 4 */
  layerGroups?: number;
  /** Largest `max_iterations` `unroll-loops` accepts. @default UNROLL_LIMITS.maxIterations (1024) */
  maxUnrollIterations?: number;
  /** Ops the graph may have after `unroll-loops`. @default UNROLL_LIMITS.maxOps (100 000) */
  maxUnrolledOps?: number;
}

export interface PassManagerOptions {
  readonly registry: Registry;
  /** Verify the input and the output of every pass, like `mlir-opt --verify-each`. @default true */
  readonly verifyEach?: boolean;
  /** Reject unknown ops when verifying. @default false */
  readonly strict?: boolean;
}

type PassFn = (g: Graph, registry: Registry) => Graph;

/** Runs a pipeline of named passes over a graph; each pass is a pure function Graph → Graph. */
export class PassManager {
  private readonly passes: { name: PassName; fn: PassFn }[] = [];
  constructor(private readonly opts: PassManagerOptions) {}

  add(name: PassName, options: PassOptions = {}): this {
    const fns: Record<PassName, PassFn> = {
      decompose: (g, r) => decompose(g, r, options),
      'unroll-loops': (g) =>
        unrollLoops(g, {
          ...(options.maxUnrollIterations !== undefined
            ? { maxIterations: options.maxUnrollIterations }
            : {}),
          ...(options.maxUnrolledOps !== undefined ? { maxOps: options.maxUnrolledOps } : {}),
        }),
      'annotate-demand': (g, r) => annotateDemand(g, r),
      fuse: (g) => fuse(g),
      verify: (g) => g,
    };
    if (!Object.hasOwn(fns, name)) {
      throw new IrError(IrErrorCode.Pass, [
        { message: `unknown pass '${name}'; passes: ${PASS_NAMES.join(', ')}` },
      ]);
    }
    this.passes.push({ name, fn: fns[name] });
    return this;
  }

  run(graph: Graph): Graph {
    const check = (g: Graph) =>
      verify(g, { registry: this.opts.registry, strict: this.opts.strict ?? false });
    const each = this.opts.verifyEach ?? true;
    let g = each || this.passes.some((p) => p.name === 'verify') ? check(graph) : graph;
    for (const p of this.passes) {
      g = p.fn(g, this.opts.registry);
      if (each) check(g);
    }
    return g;
  }
}
