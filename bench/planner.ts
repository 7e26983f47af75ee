// MILP (HiGHS) vs heuristic on generated placement problems. One JSON line per instance, then a
// summary line. The MILP runs in a worker thread that is terminated past its time limit + 5 s,
// because HiGHS-in-WASM checks its clock only between phases. Imports the built package (run
// `pnpm --filter @stitch/planner build` first). The MILP is not warm-started from the heuristic here,
// so the two solvers are compared independently. Then `incremental_ms` rows: after each of three
// perturbations (the longest critical op twice as slow on its class; the busiest class's count
// halved; that class removed) of a plan with binding device counts, planIncremental against a full
// heuristic re-plan (cost ratio) and the MILP (gap) where it finishes. Usage: pnpm bench planner [--quick]
import { loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  generateProblem,
  PERTURBATIONS,
  type PlacementProblem,
  type PlanResult,
  perturbProblem,
  planHeuristic,
  planIncremental,
  withBindingCounts,
} from '../packages/planner/dist/index.js';

interface Job {
  problem: PlacementProblem;
  slaMs: number;
  timeLimitS: number;
}
interface MilpReply {
  status: string;
  usdPerRequest?: number;
  solveMs: number;
}

const plannerUrl = new URL('../packages/planner/dist/index.js', import.meta.url).href;

// Plain JS so the worker needs no TypeScript loader (module hooks do not reach Node 20 workers).
const workerSource = `
const { parentPort, workerData: job } = require('node:worker_threads');
import(${JSON.stringify(plannerUrl)}).then(async ({ loadMilpSolver, planExact }) => {
  const milp = await loadMilpSolver();
  const t0 = performance.now();
  let reply;
  try {
    const r = planExact(milp, job.problem, { slaMs: job.slaMs, timeLimitS: job.timeLimitS, warmStart: false });
    const solveMs = performance.now() - t0;
    reply = r.status === 'infeasible' ? { status: 'infeasible', solveMs } : { status: r.status, usdPerRequest: r.usdPerRequest, solveMs };
  } catch {
    reply = { status: 'timeout', solveMs: performance.now() - t0 };
  }
  parentPort.postMessage(reply);
});
`;

// Resolves once the worker has exited: a killed HiGHS run can keep its core busy for a while after
// terminate(), and the next instance's heuristic and incremental times would pay for it.
function solveMilp(job: Job): Promise<MilpReply> {
  return new Promise((resolve) => {
    const w = new Worker(workerSource, { eval: true, workerData: job });
    const killAfter = (job.timeLimitS + 5) * 1000;
    const done = (reply: MilpReply) => {
      clearTimeout(timer);
      void w.terminate().then(() => resolve(reply));
    };
    const timer = setTimeout(() => done({ status: 'killed', solveMs: killAfter }), killAfter);
    w.once('message', (m: MilpReply) => done(m));
    w.once('error', (e) => {
      process.stderr.write(`milp worker failed: ${String(e)}\n`);
      done({ status: 'error', solveMs: 0 });
    });
  });
}

/**
 * Median wall and CPU time of `reps` runs after `warm` untimed ones; CPU time shows the cost without
 * other processes' load.
 */
function timed<R>(run: () => R, reps: number, warm = 1) {
  const wall: number[] = [];
  const cpu: number[] = [];
  let result = run();
  for (let k = 1; k < warm; k++) result = run();
  for (let k = 0; k < reps; k++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    result = run();
    wall.push(performance.now() - t0);
    const dc = process.cpuUsage(c0);
    cpu.push((dc.user + dc.system) / 1e3);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { result, ms: median(wall), cpuMs: median(cpu) };
}

const timeHeuristic = (problem: PlacementProblem, slaMs: number, reps: number) =>
  timed(() => planHeuristic(problem, { slaMs }), reps);

const costOf = (r: PlanResult) => (r.status === 'infeasible' ? null : r.usdPerRequest);
const round = (x: number | null, digits: number) => (x === null ? null : Number(x.toFixed(digits)));

/** incremental_ms rows; returns the 1000 × 50 wall times and the cost ratios. */
async function incrementalRows(quick: boolean): Promise<{ bigMs: number[]; ratios: number[] }> {
  // [ops, classes, seeds, MILP time limit s (0 = not run)]
  const grid: [number, number, number, number][] = quick
    ? [
        // The MILP runs in the quick grid of main(); here it would only time out three more times.
        [100, 10, 1, 0],
        // The target size, without the MILP (it finds no incumbent there in any short limit).
        [1000, 50, 1, 0],
      ]
    : [
        [100, 10, 3, 15],
        [200, 20, 3, 15],
        [1000, 50, 3, 20],
      ];
  const bigMs: number[] = [];
  const ratios: number[] = [];
  for (const [ops, classes, seeds, limit] of grid) {
    for (let seed = 1; seed <= seeds; seed++) {
      const g = generateProblem({ ops, classes, seed });
      const first = planHeuristic(g.problem, { slaMs: g.slaMs });
      if (first.status === 'infeasible') continue;
      const problem = withBindingCounts(g.problem, first);
      const base = planHeuristic(problem, { slaMs: g.slaMs });
      if (base.status === 'infeasible') continue;
      const previous = { problem, placement: base.placements.map((p) => p.classId) };
      for (const perturbation of PERTURBATIONS) {
        const q = perturbProblem(problem, base, perturbation);
        const full = timeHeuristic(q, g.slaMs, quick ? 1 : 3);
        // 21 runs after 10: a re-plan takes milliseconds, and a collection of what the full re-plans
        // above left (or a compilation) lands in some of them. Quick: 3 after 1 (that it runs).
        const inc = timed(
          () => planIncremental(previous, q, { slaMs: g.slaMs }),
          quick ? 3 : 21,
          quick ? 1 : 10,
        );
        // The cold MILP at 1000 × 50 finds no incumbent in its limit: run it once there (seed 1).
        const milp =
          limit > 0 && (ops < 1000 || seed === 1)
            ? await solveMilp({ problem: q, slaMs: g.slaMs, timeLimitS: limit })
            : null;
        const incCost = costOf(inc.result);
        const fullCost = costOf(full.result);
        const ratio = incCost !== null && fullCost !== null ? incCost / fullCost : null;
        if (ratio !== null) ratios.push(ratio);
        if (ops === 1000 && classes === 50) bigMs.push(inc.ms);
        const milpCost = milp?.usdPerRequest;
        const line = {
          bench: 'planner',
          incremental: true,
          ops,
          classes,
          seed,
          perturbation,
          incremental_ms: round(inc.ms, 2),
          incremental_cpu_ms: round(inc.cpuMs, 2),
          revisited: inc.result.revisited,
          full_replan: inc.result.fullReplan,
          incremental_status: inc.result.status,
          heuristic_status: full.result.status,
          heuristic_ms: round(full.ms, 2),
          heuristic_cpu_ms: round(full.cpuMs, 2),
          cost_ratio: round(ratio, 5),
          milp_status: milp?.status ?? 'not run',
          milp_ms: milp ? Math.round(milp.solveMs) : null,
          milp_gap:
            incCost !== null && milpCost !== undefined ? round((incCost - milpCost) / milpCost, 5) : null,
        };
        process.stdout.write(`${JSON.stringify(line)}\n`);
      }
    }
  }
  return { bigMs, ratios };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  // Other processes' load inflates the wall times: the summary reports the 1-minute load average
  // at the start and the end of the run.
  const loadAtStart = loadavg()[0]!;
  const grid: [ops: number, classes: number, seeds: number, timeLimitS: number][] = quick
    ? // The test command runs this: every row kind once, MILP time limits short.
      [
        [10, 5, 2, 1],
        [100, 10, 1, 1],
      ]
    : [
        [10, 5, 12, 10],
        [20, 5, 12, 10],
        [50, 10, 12, 10],
        [100, 10, 12, 15],
        [200, 20, 6, 15],
        [500, 20, 3, 20],
        [1000, 50, 3, 20],
      ];
  // Warm the JIT so the first timed instance is not charged for compilation: the heuristic, and
  // the incremental re-plan's own code after each perturbation (else the first incremental rows
  // pay for compiling it).
  for (let s = 0; s < (quick ? 1 : 5); s++) {
    const { problem, slaMs } = generateProblem({ ops: 200, classes: 20, seed: 1000 + s });
    const first = planHeuristic(problem, { slaMs });
    if (first.status === 'infeasible') continue;
    const bound = withBindingCounts(problem, first);
    const base = planHeuristic(bound, { slaMs });
    if (base.status === 'infeasible') continue;
    const previous = { problem: bound, placement: base.placements.map((p) => p.classId) };
    for (const kind of PERTURBATIONS) {
      const changed = perturbProblem(bound, base, kind);
      for (let k = 0; k < 3; k++) planIncremental(previous, changed, { slaMs });
    }
  }
  let compared = 0;
  let within = 0;
  let optimal = 0;
  let optimalWithin = 0;
  const bigMs: number[] = [];
  const bigCpuMs: number[] = [];
  for (const [ops, classes, seeds, timeLimitS] of grid) {
    for (let seed = 1; seed <= seeds; seed++) {
      const { problem, slaMs } = generateProblem({ ops, classes, seed });
      const h = timeHeuristic(problem, slaMs, ops >= 500 ? 5 : 3);
      const m = await solveMilp({ problem, slaMs, timeLimitS });
      const hCost = h.result.status === 'infeasible' ? null : h.result.usdPerRequest;
      const gap =
        hCost !== null && m.usdPerRequest !== undefined ? (hCost - m.usdPerRequest) / m.usdPerRequest : null;
      if (gap !== null) {
        compared++;
        if (gap <= 0.05) within++;
        if (m.status === 'optimal') {
          optimal++;
          if (gap <= 0.05) optimalWithin++;
        }
      }
      if (ops === 1000 && classes === 50) bigMs.push(h.ms);
      if (ops === 1000 && classes === 50) bigCpuMs.push(h.cpuMs);
      const line = {
        bench: 'planner',
        ops,
        classes,
        edges: problem.edges.length,
        seed,
        sla_ms: Number(slaMs.toFixed(3)),
        milp_status: m.status,
        milp_ms: Math.round(m.solveMs),
        milp_time_limit_s: timeLimitS,
        heuristic_status: h.result.status,
        heuristic_ms: Number(h.ms.toFixed(2)),
        heuristic_cpu_ms: Number(h.cpuMs.toFixed(2)),
        gap: gap === null ? null : Number(gap.toFixed(5)),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  }
  const inc = await incrementalRows(quick);
  const summary = {
    bench: 'planner',
    summary: true,
    instances_compared: compared,
    within_5pct: within,
    within_5pct_share: compared ? Number((within / compared).toFixed(3)) : null,
    milp_optimal: optimal,
    within_5pct_of_proven_optimum: optimalWithin,
    heuristic_ms_1000x50_max: bigMs.length ? Number(Math.max(...bigMs).toFixed(2)) : null,
    heuristic_cpu_ms_1000x50_max: bigCpuMs.length ? Number(Math.max(...bigCpuMs).toFixed(2)) : null,
    incremental_ms_1000x50_max: inc.bigMs.length ? Number(Math.max(...inc.bigMs).toFixed(2)) : null,
    incremental_cost_ratio_max: inc.ratios.length ? Number(Math.max(...inc.ratios).toFixed(5)) : null,
    incremental_within_1pct: inc.ratios.filter((r) => r <= 1.01).length,
    incremental_compared: inc.ratios.length,
    load_average_1m: [Number(loadAtStart.toFixed(2)), Number(loadavg()[0]!.toFixed(2))],
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
