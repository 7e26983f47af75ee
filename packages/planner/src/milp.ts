import type { Highs as HighsApi } from 'highs';
import * as highsModule from 'highs';
import { PlanError, PlanErrorCode } from './errors.js';
import type { Compiled } from './problem.js';

type Highs = HighsApi;
// The package ships ESM whose default export is the loader, but its .d.ts is typed as CommonJS,
// so under NodeNext TypeScript sees the module object; the cast states what runs.
const highsLoader = highsModule.default as unknown as () => Promise<Highs>;

export interface MilpOptions {
  /** Hard SLA (λ = ∞) unless lambda is given. */
  slaMs: number;
  /** Objective units per ms of SLA slack; omitted = hard SLA. */
  lambda?: number;
  /** Minimise latency instead of cost (used to find the best achievable latency). */
  minimiseLatency?: boolean;
  /** @default 60 */
  timeLimitS?: number;
  /** A feasible placement to start branch and bound from. */
  start?: Int32Array;
}

export interface MilpOutcome {
  status: 'optimal' | 'feasible' | 'infeasible' | 'timeout';
  assign: Int32Array | null;
  latencyMs: number;
  slackMs: number;
  solveMs: number;
}

const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : v.toPrecision(12));

/**
 * The paper's formulation in CPLEX LP text. Latency along the DAG uses a start-time variable per
 * task: S_v ≥ S_u + Σ_j t_uj·x_uj + d_e for every edge, and L ≥ S_i + Σ_j t_ij·x_ij for sinks.
 * The transfer d_e of edge u→v is zero when both ends share a class and max(τ_a, τ_b) otherwise,
 * linearised without extra binaries as d_e ≥ τ_j·(x_uj − x_vj) and d_e ≥ τ_j·(x_vj − x_uj).
 * A priced edge adds Σ_j send_j·s_ej + recv_j·r_ej with s_ej ≥ x_uj − x_vj and r_ej ≥ x_vj − x_uj
 * (continuous, ≥ 0): the sender's class pays its side and the receiver's class its side when they
 * differ, nothing when they match; as tight in the LP relaxation as the d_e rows.
 */
export function buildLp(c: Compiled, o: MilpOptions): { lp: string; scale: number } {
  let maxCoef = 0;
  for (const row of c.coef)
    for (const v of row) if (Number.isFinite(v)) maxCoef = Math.max(maxCoef, Math.abs(v));
  // HiGHS tolerances are absolute: scale $ so the largest coefficient is ~1000.
  const scale = maxCoef > 0 ? 1000 / maxCoef : 1;
  const x = (i: number, j: number) => `x${i}_${j}`;
  const has = (i: number, j: number) => Number.isFinite(c.coef[i]![j]!);
  const price = o.minimiseLatency ? { obj: [], rows: [] } : priceTerms(c, scale, has);
  const out: string[] = ['Minimize', ' obj:'];
  if (o.minimiseLatency) out.push(' + L');
  else {
    for (let i = 0; i < c.n; i++)
      for (let j = 0; j < c.m; j++) if (has(i, j)) out.push(` + ${fmt(c.coef[i]![j]! * scale)} ${x(i, j)}`);
    if (c.gamma > 0) for (let e = 0; e < c.edges.length; e++) out.push(` + ${fmt(c.gamma * scale)} d${e}`);
    out.push(...price.obj);
    if (o.lambda !== undefined) out.push(` + ${fmt(o.lambda * scale)} slack`);
  }
  out.push('Subject To');
  const timeSum = (i: number) => {
    let s = '';
    for (let j = 0; j < c.m; j++) if (has(i, j)) s += ` - ${fmt(c.p.timeMs[i]![j]!)} ${x(i, j)}`;
    return s;
  };
  for (let i = 0; i < c.n; i++) {
    let row = ` a${i}:`;
    for (let j = 0; j < c.m; j++) if (has(i, j)) row += ` + ${x(i, j)}`;
    out.push(`${row} = 1`);
    if (c.succEdges[i]!.length === 0) out.push(` f${i}: L - S${i}${timeSum(i)} >= 0`);
  }
  c.edges.forEach((e, k) => {
    out.push(` p${k}: S${e.v} - S${e.u}${timeSum(e.u)} - d${k} >= 0`);
    for (let j = 0; j < c.m; j++) {
      const tau = fmt(c.tau[k * c.m + j]!);
      const xu = has(e.u, j) ? ` - ${tau} ${x(e.u, j)}` : '';
      const xv = has(e.v, j) ? ` - ${tau} ${x(e.v, j)}` : '';
      if (xu) out.push(` tu${k}_${j}: d${k}${xu}${xv ? xv.replace(' - ', ' + ') : ''} >= 0`);
      if (xv) out.push(` tv${k}_${j}: d${k}${xv}${xu ? xu.replace(' - ', ' + ') : ''} >= 0`);
    }
  });
  out.push(...price.rows);
  out.push(o.lambda !== undefined ? ` sla: L - slack <= ${fmt(o.slaMs)}` : ` sla: L <= ${fmt(o.slaMs)}`);
  for (let j = 0; j < c.m; j++) {
    if (!Number.isFinite(c.cap[j]!)) continue;
    let row = ` cap${j}:`;
    let any = false;
    for (let i = 0; i < c.n; i++) {
      if (!has(i, j)) continue;
      row += ` + ${fmt(c.units[i]![j]!)} ${x(i, j)}`;
      any = true;
    }
    if (any) out.push(`${row} <= ${fmt(c.cap[j]!)}`);
  }
  out.push('Binary');
  for (let i = 0; i < c.n; i++) for (let j = 0; j < c.m; j++) if (has(i, j)) out.push(` ${x(i, j)}`);
  out.push('End');
  return { lp: out.join('\n'), scale };
}

/** Objective terms and rows that charge each edge's crossing price (× scale) to its two sides. */
function priceTerms(
  c: Compiled,
  scale: number,
  has: (i: number, j: number) => boolean,
): { obj: string[]; rows: string[] } {
  const obj: string[] = [];
  const rows: string[] = [];
  c.edges.forEach(({ u, v }, k) => {
    for (let j = 0; j < c.m; j++) {
      const xu = has(u, j) ? `x${u}_${j}` : null;
      const xv = has(v, j) ? `x${v}_${j}` : null;
      const send = c.send[k]![j]!;
      const recv = c.recv[k]![j]!;
      if (xu && send > 0) {
        obj.push(` + ${fmt(send * scale)} s${k}_${j}`);
        rows.push(` ps${k}_${j}: s${k}_${j} - ${xu}${xv ? ` + ${xv}` : ''} >= 0`);
      }
      if (xv && recv > 0) {
        obj.push(` + ${fmt(recv * scale)} r${k}_${j}`);
        rows.push(` pr${k}_${j}: r${k}_${j} - ${xv}${xu ? ` + ${xu}` : ''} >= 0`);
      }
    }
  });
  return { obj, rows };
}

/** A loaded HiGHS instance (WASM, loaded once per solver). */
export interface MilpSolver {
  solve(c: Compiled, o: MilpOptions): MilpOutcome;
}

export async function loadMilpSolver(): Promise<MilpSolver> {
  let highs: Highs;
  try {
    highs = await highsLoader();
  } catch (cause) {
    throw new PlanError(
      PlanErrorCode.Solver,
      'could not load the HiGHS WebAssembly solver; reinstall the "highs" package',
      {
        cause,
      },
    );
  }
  return { solve: (c, o) => solveWith(highs, c, o) };
}

/**
 * Solves through the persistent HiGHS model so a known placement (the heuristic's) can seed the
 * branch and bound: a time-limited solve then returns at least that placement.
 */
function solveWith(highs: Highs, c: Compiled, o: MilpOptions): MilpOutcome {
  const { lp } = buildLp(c, o);
  const t0 = Date.now();
  const fail = (cause: unknown): never => {
    throw new PlanError(
      PlanErrorCode.Solver,
      `HiGHS failed on a ${c.n}×${c.m} model: ${String(cause)}; use planHeuristic (stitch plan --solver heuristic) instead`,
      { cause },
    );
  };
  let model: ReturnType<Highs['createModel']>;
  try {
    model = highs.createModel({ format: 'lp', data: lp });
  } catch (cause) {
    return fail(cause);
  }
  try {
    model.options.set({ output_flag: false, time_limit: o.timeLimitS ?? 60, mip_rel_gap: 1e-6 });
    const x = (i: number, j: number) => model.getColByName(`x${i}_${j}`);
    if (o.start) {
      const indices: number[] = [];
      const values: number[] = [];
      for (let i = 0; i < c.n; i++) {
        for (let j = 0; j < c.m; j++) {
          if (!Number.isFinite(c.coef[i]![j]!)) continue;
          indices.push(x(i, j));
          values.push(o.start[i] === j ? 1 : 0);
        }
      }
      model.setSolution({ indices, values });
    }
    const status = model.run().modelStatus;
    const solveMs = Date.now() - t0;
    const none = { assign: null, latencyMs: Infinity, slackMs: 0, solveMs };
    const codes = highs.constants.modelStatus;
    if (status === codes.infeasible) return { status: 'infeasible', ...none };
    const hasSolution = Number(model.info.get('primal_solution_status')) === 2;
    if (!hasSolution) {
      if (status === codes.timeLimit) return { status: 'timeout', ...none };
      throw new PlanError(
        PlanErrorCode.Solver,
        `HiGHS ended with model status ${status} on a ${c.n}×${c.m} model; use planHeuristic (stitch plan --solver heuristic) instead`,
      );
    }
    const col = model.getSolution().colValue;
    const assign = new Int32Array(c.n).fill(-1);
    for (let i = 0; i < c.n; i++) {
      for (let j = 0; j < c.m; j++) if (Number.isFinite(c.coef[i]![j]!) && col[x(i, j)]! > 0.5) assign[i] = j;
    }
    if (assign.includes(-1)) return { status: 'timeout', ...none };
    const slack = o.lambda !== undefined ? col[model.getColByName('slack')]! : 0;
    return {
      status: status === codes.optimal ? 'optimal' : 'feasible',
      assign,
      latencyMs: col[model.getColByName('L')]!,
      slackMs: slack,
      solveMs,
    };
  } catch (cause) {
    if (cause instanceof PlanError) throw cause;
    return fail(cause);
  } finally {
    model.dispose();
  }
}
