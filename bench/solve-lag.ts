// How long the coordinator's event loop stops while it deploys a large graph: the same analysis (IR
// parse and passes) and plan (heuristic + HiGHS MILP) run once on the event loop and once through
// the coordinator's solver pool (piscina worker threads). A 5 ms ticker measures the loop meanwhile:
// loop_lag_max_ms is the longest a tick came late. One JSON line per (ops, where), then one with the
// ratio. Imports the built packages (run `pnpm build` first).
// Usage: pnpm bench solve-lag [--steps 150,400] [--quick]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { analyseGraph, type NodeClass, planDeployment } from '../packages/agents/dist/index.js';
import { milpSolver } from '../packages/agents/dist/placement.js';
import { SolverPool } from '../packages/agents/dist/solver-pool.js';
import { printGraph } from '../packages/ir/src/index.js';
import { chainGraph } from './lib/chain-graph.js';

const quick = process.argv.includes('--quick');
const i = process.argv.indexOf('--steps');
const steps = (i > 0 ? process.argv[i + 1]! : quick ? '20' : '150,400').split(',').map(Number);
const TICK_MS = 5;

/** bench/ir's chain of `n` llm → tool steps, as text, with an SLA every placement meets (the solve, not its feasibility, is measured). */
function chain(n: number): string {
  return printGraph(chainGraph(n)).replace(
    `{sym_name = "chain${n}"}`,
    `{sla_ms = ${n * 10_000} : i64, sym_name = "chain${n}"}`,
  );
}

const nodes: NodeClass[] = ['cpu', 'h100', 'a100-80g', 'gaudi3', 'mi300x', 'b200'].map((classId, k) => ({
  nodeId: `n${k}`,
  classId,
  modelled: classId !== 'cpu',
  load: 0,
  slots: 1,
}));

/** Runs `work` while a ticker measures how late the event loop serves it. */
async function measured(work: () => Promise<number>) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let worst = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - TICK_MS);
    last = now;
  }, TICK_MS);
  h.enable();
  const t0 = performance.now();
  // One tick first, so that a blocking solve is measured from a running ticker.
  await new Promise((r) => setTimeout(r, TICK_MS * 2));
  const ops = await work();
  const ms = performance.now() - t0 - TICK_MS * 2;
  await new Promise((r) => setTimeout(r, TICK_MS * 2));
  clearInterval(ticker);
  h.disable();
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    ops,
    solve_ms: round(ms),
    loop_lag_max_ms: round(worst),
    loop_lag_p99_ms: round(h.percentile(99) / 1e6),
  };
}

const milp = await milpSolver();
const pool = new SolverPool();
try {
  // Starts the worker thread and loads HiGHS there, as a coordinator's first deploy does.
  await pool.analyse(chain(2)).then((a) => pool.plan({ deployment: 'warm', analysed: a, nodes }));
  for (const n of steps) {
    const text = chain(n);
    const direct = await measured(async () => {
      const analysed = analyseGraph(text);
      return planDeployment({ deployment: 'd', analysed, nodes, milp }).ops.length;
    });
    const pooled = await measured(async () => {
      const analysed = await pool.analyse(text);
      return (await pool.plan({ deployment: 'd', analysed, nodes })).ops.length;
    });
    for (const [where, r] of [
      ['event loop', direct],
      ['solver pool', pooled],
    ] as const)
      process.stdout.write(`${JSON.stringify({ bench: 'solve-lag', steps: n, where, ...r })}\n`);
    const ratio = Math.round((direct.loop_lag_max_ms / Math.max(0.1, pooled.loop_lag_max_ms)) * 10) / 10;
    process.stdout.write(
      `${JSON.stringify({ bench: 'solve-lag', steps: n, summary: 'loop lag on the event loop ÷ with the solver pool', ratio })}\n`,
    );
  }
} finally {
  await pool.close();
}
