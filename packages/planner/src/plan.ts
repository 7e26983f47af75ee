import { PlanError, PlanErrorCode } from './errors.js';
import { solveHeuristic } from './heuristic.js';
import type { MilpSolver } from './milp.js';
import { type Compiled, compile, type PlacementProblem, transferMs } from './problem.js';
import { remember } from './recompile.js';
import { criticalPath, forward, totalCost, usage } from './schedule.js';

export interface PlanOptions {
  /** End-to-end latency bound per request, milliseconds. */
  slaMs: number;
  /** Target requests per second; replicas are sized for it and cost is $/h. 0 = cost per request. @default 0 */
  rate?: number;
  /**
   * Requests per second that tasks share their class's devices at, as an actor runtime's operators
   * do (each holds a device only while it runs): a task then uses rate × its time (s) of a device
   * (times its devices per replica), the class counts bound what a class's tasks use together, and
   * cost stays per request. Not with `rate`. @default 0: counts bound whole devices
   */
  sharedRate?: number;
  /** Penalty per ms of SLA slack in objective units (MILP only); omitted = hard SLA. */
  lambda?: number;
  /** The paper's γ: objective units per ms of edge transfer. @default 0 */
  gamma?: number;
  /** MILP time limit in seconds. @default 60 */
  timeLimitS?: number;
  /** Seed the MILP with the heuristic's placement (a time-limited solve returns at least it). @default true */
  warmStart?: boolean;
}

export interface Placement {
  task: string;
  op?: string;
  classId: string;
  modelled: boolean;
  timeMs: number;
  startMs: number;
  finishMs: number;
  /**
   * Devices held at the target rate (replicas × devices per replica); with a shared rate, the devices
   * its requests keep busy at that rate.
   */
  devices: number;
  /** $/h at the target rate, or $ per request when rate is 0. */
  cost: number;
}

/** An edge whose ends sit on different classes, with what crossing costs per request. */
export interface Transfer {
  from: string;
  to: string;
  fromClass: string;
  toClass: string;
  ms: number;
  /** $ per request: egress and link time on both ends, or the profile's fixed price (γ not included). */
  usd: number;
}

export interface PlanFeasible {
  status: 'optimal' | 'feasible';
  solver: 'milp' | 'heuristic';
  placements: Placement[];
  latencyMs: number;
  slackMs: number;
  criticalPath: string[];
  /** $ per hour at the target rate (undefined when rate is 0). */
  usdPerHour?: number;
  usdPerRequest: number;
  /** Edges that cross classes; their price is part of `usdPerRequest`. */
  transfers: Transfer[];
  /** Σ transfers' $ per request. */
  transferUsdPerRequest: number;
  classUse: { classId: string; devices: number; capacity: number | null }[];
  solveMs: number;
}

export interface PlanInfeasible {
  status: 'infeasible';
  solver: 'milp' | 'heuristic';
  /** The constraint that cannot be met: a task no class can hold, device counts, or the SLA. */
  binding: 'placement' | 'capacity' | 'sla';
  message: string;
  task?: string;
  /** Lowest end-to-end latency found within the capacities (proved optimal by the MILP). */
  bestLatencyMs?: number;
  solveMs: number;
}

export type PlanResult = PlanFeasible | PlanInfeasible;

export function checkOptions(o: PlanOptions): void {
  if (!(o.slaMs > 0))
    throw new PlanError(PlanErrorCode.Input, `options.slaMs must be a positive number, got ${o.slaMs}`);
  if (o.lambda !== undefined && !(o.lambda >= 0)) {
    throw new PlanError(PlanErrorCode.Input, `options.lambda must be >= 0, got ${o.lambda}`);
  }
  if (o.sharedRate !== undefined && !(o.sharedRate >= 0 && o.sharedRate < Infinity))
    throw new PlanError(
      PlanErrorCode.Input,
      `options.sharedRate must be a finite number >= 0 requests/s, got ${o.sharedRate}`,
    );
  if ((o.sharedRate ?? 0) > 0 && (o.rate ?? 0) > 0)
    throw new PlanError(
      PlanErrorCode.Input,
      'options.rate (replicas on whole devices) and options.sharedRate (shared devices) exclude each other; give one',
    );
}

/** A task no class can run, or whose smallest footprint exceeds every class's device count. */
export function placementFailure(c: Compiled, solver: PlanInfeasible['solver']): PlanInfeasible | null {
  for (let i = 0; i < c.n; i++) {
    let runnable = false;
    let fits = false;
    for (let k = 0; k < c.m; k++) {
      if (!Number.isFinite(c.coef[i]![k]!)) continue;
      runnable = true;
      if (c.units[i]![k]! <= c.cap[k]!) fits = true;
    }
    const task = c.p.tasks[i]!.id;
    if (!runnable) {
      const message = `task "${task}" cannot run on any class (memory or op kind); add a class that can hold it`;
      return { status: 'infeasible', solver, binding: 'placement', task, message, solveMs: 0 };
    }
    if (!fits) {
      const message = `task "${task}" needs more devices than any class has; raise a class count or lower the rate`;
      return { status: 'infeasible', solver, binding: 'capacity', task, message, solveMs: 0 };
    }
  }
  return null;
}

export function feasible(
  c: Compiled,
  assign: Int32Array,
  extra: Pick<PlanFeasible, 'status' | 'solver' | 'slackMs' | 'solveMs'>,
): PlanFeasible {
  const s = forward(c, assign);
  const used = usage(c, assign);
  const objective = totalCost(c, assign);
  const placements = c.p.tasks.map((t, i) => {
    const k = assign[i]!;
    const cls = c.p.classes[k]!;
    const p: Placement = {
      task: t.id,
      classId: cls.id,
      modelled: cls.modelled ?? false,
      timeMs: c.p.timeMs[i]![k]!,
      startMs: s.es[i]!,
      finishMs: s.ef[i]!,
      devices: c.units[i]![k]!,
      cost: c.coef[i]![k]!,
    };
    if (t.op !== undefined) p.op = t.op;
    return p;
  });
  const perRequest = c.rate > 0 ? 1 / 3600 / c.rate : 1;
  const transfers: Transfer[] = [];
  let transferUsdPerRequest = 0;
  c.edges.forEach((e, k) => {
    const a = assign[e.u]!;
    const b = assign[e.v]!;
    if (a === b) return;
    const usd = (c.send[k]![a]! + c.recv[k]![b]!) * perRequest;
    transferUsdPerRequest += usd;
    transfers.push({
      from: c.p.tasks[e.u]!.id,
      to: c.p.tasks[e.v]!.id,
      fromClass: c.p.classes[a]!.id,
      toClass: c.p.classes[b]!.id,
      ms: transferMs(c, k, a, b),
      usd,
    });
  });
  const result: PlanFeasible = {
    ...extra,
    placements,
    transfers,
    transferUsdPerRequest,
    latencyMs: s.latencyMs,
    criticalPath: criticalPath(c, assign, s).map((i) => c.p.tasks[i]!.id),
    usdPerRequest: c.rate > 0 ? objective / 3600 / c.rate : objective,
    classUse: c.p.classes.map((cl, k) => ({ classId: cl.id, devices: used[k]!, capacity: cl.count ?? null })),
  };
  if (c.rate > 0) result.usdPerHour = objective;
  return result;
}

/** Fast plan for online re-planning; the SLA is hard. */
export function planHeuristic(problem: PlacementProblem, o: PlanOptions): PlanResult {
  checkOptions(o);
  const c = compile(problem, o.rate ?? 0, o.gamma ?? 0, o.sharedRate ?? 0);
  remember(c);
  const bad = placementFailure(c, 'heuristic');
  if (bad) return bad;
  const t0 = Date.now();
  const h = solveHeuristic(c, o.slaMs);
  const solveMs = Date.now() - t0;
  if (h.assign)
    return feasible(c, h.assign, { status: 'feasible', solver: 'heuristic', slackMs: 0, solveMs });
  if (h.failure === 'capacity') {
    const message = 'the device counts cannot hold every task at this rate; add devices or lower the rate';
    return { status: 'infeasible', solver: 'heuristic', binding: 'capacity', message, solveMs };
  }
  const message = `no placement found within ${o.slaMs} ms; the fastest found takes ${h.bestLatencyMs.toFixed(3)} ms`;
  return {
    status: 'infeasible',
    solver: 'heuristic',
    binding: 'sla',
    message,
    bestLatencyMs: h.bestLatencyMs,
    solveMs,
  };
}

/** Exact plan with HiGHS; on infeasibility it re-solves to tell capacity from SLA and the best latency. */
export function planExact(solver: MilpSolver, problem: PlacementProblem, o: PlanOptions): PlanResult {
  checkOptions(o);
  const c = compile(problem, o.rate ?? 0, o.gamma ?? 0, o.sharedRate ?? 0);
  remember(c);
  const bad = placementFailure(c, 'milp');
  if (bad) return bad;
  const timeLimitS = o.timeLimitS ?? 60;
  const base: Parameters<MilpSolver['solve']>[1] = { slaMs: o.slaMs, timeLimitS };
  if (o.lambda !== undefined) base.lambda = o.lambda;
  const warm = o.warmStart === false ? null : solveHeuristic(c, o.slaMs).assign;
  if (warm) base.start = warm;
  const r = solver.solve(c, base);
  if (r.assign) {
    return feasible(c, r.assign, {
      status: r.status as 'optimal' | 'feasible',
      solver: 'milp',
      slackMs: r.slackMs,
      solveMs: r.solveMs,
    });
  }
  if (r.status === 'timeout') {
    throw new PlanError(
      PlanErrorCode.Solver,
      `HiGHS found no placement within ${timeLimitS} s; raise the time limit or use the heuristic`,
    );
  }
  const fastest = solver.solve(c, { slaMs: Number.MAX_SAFE_INTEGER, minimiseLatency: true, timeLimitS });
  const solveMs = r.solveMs + fastest.solveMs;
  if (!fastest.assign) {
    const message = 'the device counts cannot hold every task at this rate; add devices or lower the rate';
    return { status: 'infeasible', solver: 'milp', binding: 'capacity', message, solveMs };
  }
  const message = `no placement meets ${o.slaMs} ms; the best achievable latency is ${fastest.latencyMs.toFixed(3)} ms`;
  return {
    status: 'infeasible',
    solver: 'milp',
    binding: 'sla',
    message,
    bestLatencyMs: fastest.latencyMs,
    solveMs,
  };
}
