import { Piscina } from 'piscina';
import type { Analysed, PlanInput, PlanOutcome } from './placement.js';
import { fromWire } from './solve-errors.js';
import type { SolveResult, SolveTask } from './solve-worker.js';
import { inSpan } from './tracing.js';

// The worker file beside this one: .js when built, .ts when this package's tests run its sources
// under the repository's TypeScript loader (piscina imports the worker itself, so the loader's .js → .ts
// mapping does not apply).
const WORKER_EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** A solve's cancellation, and the span it belongs to. */
export interface SolveOptions {
  signal?: AbortSignal;
  traceparent?: string;
}

export interface SolverPoolOptions {
  /** Solver threads. @default 1 (solves are serialised per coordinator anyway) */
  threads?: number;
  /** Plan with HiGHS as well as the heuristic (it keeps the cheaper feasible plan). @default true */
  milp?: boolean;
}

/**
 * Runs the CPU-heavy part of deploying and re-planning (IR parse and passes, HiGHS, the heuristic) on
 * worker threads. A solve given an AbortSignal that fires is dropped, or its thread terminated if it
 * already runs: a newer re-plan supersedes an older one instead of queueing behind it.
 */
export class SolverPool {
  readonly #pool: Piscina<SolveTask, SolveResult>;
  readonly #milp: boolean;

  constructor(options: SolverPoolOptions = {}) {
    const threads = options.threads ?? 1;
    if (!Number.isSafeInteger(threads) || threads < 1)
      throw new RangeError(`threads must be a positive integer, found ${String(options.threads)}`);
    this.#milp = options.milp ?? true;
    this.#pool = new Piscina({
      filename: new URL(`./solve-worker${WORKER_EXT}`, import.meta.url).href,
      minThreads: 0,
      maxThreads: threads,
      // An idle coordinator gives its solver threads back; the next solve starts one (~100 ms with HiGHS).
      idleTimeout: 60_000,
    });
  }

  async #run(task: SolveTask, signal?: AbortSignal): Promise<unknown> {
    const r = await this.#pool.run(task, signal ? { signal } : {});
    if (!r.ok) throw fromWire(r.error);
    return r.value;
  }

  /**
   * Parses the graph and runs decompose, unroll-loops and annotate-demand (see analyseGraph). A span
   * `solve analyse`, the child of `traceparent` (the caller's span: a queue between them loses the
   * active context).
   */
  analyse(mlir: string, o: SolveOptions = {}): Promise<Analysed> {
    const attributes = { 'stitch.mlir_bytes': mlir.length };
    return inSpan(
      'solve analyse',
      attributes,
      async (span) => {
        const a = (await this.#run({ kind: 'analyse', mlir }, o.signal)) as Analysed;
        span.setAttributes({ 'stitch.deployment': a.name, 'stitch.ops': a.rows.length });
        return a;
      },
      o.traceparent,
    );
  }

  /** planDeployment on a solver thread, in a span `solve plan` (what the solver did, how long). */
  plan(input: Omit<PlanInput, 'milp'>, o: SolveOptions = {}): Promise<PlanOutcome> {
    const { correction, ...rest } = input;
    const attributes = { 'stitch.deployment': input.deployment, 'stitch.nodes': input.nodes.length };
    return inSpan(
      'solve plan',
      attributes,
      async (span) => {
        const p = (await this.#run(
          {
            kind: 'plan',
            input: {
              ...rest,
              // Other deployments' op entries would be copied to the thread for nothing.
              ...(correction ? { correction: correction.snapshot(input.deployment) } : {}),
              milp: this.#milp,
            },
          },
          o.signal,
        )) as PlanOutcome;
        span.setAttributes({
          'stitch.solver': p.solver,
          'stitch.solve_ms.heuristic': p.solveMs.heuristic,
          'stitch.solve_ms.milp': p.solveMs.milp ?? -1,
          'stitch.estimated_ms': p.latencyMs,
        });
        return p;
      },
      o.traceparent,
    );
  }

  close(): Promise<void> {
    return this.#pool.destroy();
  }
}
