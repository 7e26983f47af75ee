import { type Catalog, PAPER_CATALOG, parseCatalog } from '@stitch/cost';
import { defaultRegistry, demandTable, PARSE_LIMITS, PassManager, parseGraph } from '@stitch/ir';
import {
  loadMilpSolver,
  type PlacementProblem,
  PlanError,
  PlanErrorCode,
  type PlanFeasible,
  type PlanOptions,
  type PlanResult,
  paretoFrontier,
  planExact,
  planHeuristic,
  problemFromDemand,
  problemFromProfile,
} from '@stitch/planner';
import type { Command } from 'commander';
import { alignColumns } from '../columns.js';
import { InputTooLarge, MAX_JSON_FILE_BYTES, readInputText } from '../input-file.js';

/** Exit status when the plan is infeasible: distinct from bad input (2) and failures (1). */
export const EXIT_INFEASIBLE = 3;

interface PlanCliOpts {
  slaMs: string;
  rate: string;
  catalog?: string;
  classes?: string;
  count?: string[];
  solver: string;
  lambda?: string;
  timeLimit: string;
  dense?: boolean;
  pareto?: boolean;
  json?: boolean;
}

export function readText(file: string, what: string, maxBytes: number): string {
  try {
    return readInputText(file, maxBytes, what);
  } catch (e) {
    if (e instanceof InputTooLarge) throw e;
    const reason = (e as { code?: string }).code ?? 'unreadable';
    throw new PlanError(PlanErrorCode.Input, `cannot read the ${what} ${file} (${reason}); check the path`);
  }
}

export function readJson(file: string, what: string, maxBytes = MAX_JSON_FILE_BYTES): unknown {
  const text = readText(file, what, maxBytes);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new PlanError(
      PlanErrorCode.Input,
      `the ${what} ${file} is not valid JSON: ${(e as Error).message}`,
    );
  }
}

export function num(flag: string, v: string, min: number, strict: boolean): number {
  const n = Number(v);
  if (!Number.isFinite(n) || (strict ? n <= min : n < min)) {
    throw new PlanError(
      PlanErrorCode.Input,
      `--${flag} must be a number ${strict ? '>' : '>='} ${min}, got '${v}'`,
    );
  }
  return n;
}

function counts(pairs: string[] | undefined): Record<string, number> | undefined {
  if (!pairs) return undefined;
  const out: Record<string, number> = {};
  for (const p of pairs) {
    const m = /^([a-z0-9._-]+)=(\d+)$/.exec(p);
    if (!m) throw new PlanError(PlanErrorCode.Input, `--count takes CLASS=N (e.g. h100=8), got '${p}'`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** An .mlir graph goes through decompose → unroll-loops → annotate-demand; JSON is a profile. */
export function loadProblem(
  file: string,
  o: Pick<PlanCliOpts, 'classes' | 'count' | 'dense'>,
  catalog: Catalog,
): PlacementProblem {
  if (file.endsWith('.json')) return problemFromProfile(readJson(file, 'profile'));
  const graph = parseGraph(readText(file, 'graph', PARSE_LIMITS.maxInputBytes), file);
  const annotated = new PassManager({ registry: defaultRegistry() })
    .add('decompose')
    .add('unroll-loops')
    .add('annotate-demand')
    .run(graph);
  const derived: Parameters<typeof problemFromDemand>[1] = { catalog, basis: o.dense ? 'dense' : 'paper' };
  if (o.classes) derived.classes = o.classes.split(',').map((s) => s.trim());
  const c = counts(o.count);
  if (c) derived.counts = c;
  return problemFromDemand(demandTable(annotated), derived);
}

const fmtMs = (v: number) => (v >= 100 ? v.toFixed(1) : v.toPrecision(4));
const fmtUsd = (v: number) => (v >= 0.01 ? `$${v.toFixed(4)}` : `$${v.toExponential(3)}`);

/** The first three columns (op, kind, class) to the left, the figures to the right. */
const table = (rows: string[][]): string => alignColumns(rows, (c) => c >= 3).join('\n');

/** What crossing classes costs: count, time and $ (egress and link time at both ends), in the total above. */
function transferLine(r: PlanFeasible): string {
  if (r.transfers.length === 0) return 'transfers: none cross classes ($0)';
  const ms = r.transfers.reduce((a, t) => a + t.ms, 0);
  const share =
    r.usdPerRequest > 0
      ? ` (${((100 * r.transferUsdPerRequest) / r.usdPerRequest).toFixed(1)} % of the cost)`
      : '';
  const n = r.transfers.length;
  return `transfers: ${n} ${n === 1 ? 'edge crosses' : 'edges cross'} classes, ${fmtMs(ms)} ms, ${fmtUsd(r.transferUsdPerRequest)} per request${share}`;
}

function printPlan(r: PlanResult, o: PlanOptions): string {
  if (r.status === 'infeasible') {
    const best =
      r.bestLatencyMs !== undefined ? `\nbest achievable latency: ${fmtMs(r.bestLatencyMs)} ms` : '';
    return `infeasible (${r.solver}): binding constraint ${r.binding}${r.task ? ` (task ${r.task})` : ''}\n${r.message}${best}\n`;
  }
  const rows = [
    ['task', 'op', 'class', 'time ms', 'start ms', 'finish ms', 'devices', o.rate ? '$/h' : '$/request'],
  ];
  for (const p of r.placements) {
    const cls = p.modelled ? `${p.classId} (modelled)` : p.classId;
    const cost = o.rate ? p.cost.toFixed(4) : p.cost.toExponential(3);
    rows.push([
      p.task,
      p.op ?? '',
      cls,
      fmtMs(p.timeMs),
      fmtMs(p.startMs),
      fmtMs(p.finishMs),
      String(p.devices),
      cost,
    ]);
  }
  const lines = [
    `${r.status} (${r.solver}, ${r.solveMs} ms)`,
    table(rows),
    '',
    `critical path: ${r.criticalPath.join(' → ')}`,
    `latency ${fmtMs(r.latencyMs)} ms (SLA ${o.slaMs} ms${r.slackMs > 0 ? `, over by ${fmtMs(r.slackMs)} ms` : ''})`,
    `cost ${fmtUsd(r.usdPerRequest)} per request${r.usdPerHour !== undefined ? `, ${fmtUsd(r.usdPerHour)}/h at ${o.rate} req/s` : ''}`,
    transferLine(r),
  ];
  if (r.placements.some((p) => p.modelled))
    lines.push('times on modelled classes are cost-model predictions');
  return `${lines.join('\n')}\n`;
}

async function runPlan(file: string, o: PlanCliOpts): Promise<void> {
  if (o.solver !== 'milp' && o.solver !== 'heuristic') {
    throw new PlanError(PlanErrorCode.Input, `--solver must be milp or heuristic, got '${o.solver}'`);
  }
  const options: PlanOptions = {
    slaMs: num('sla-ms', o.slaMs, 0, true),
    rate: num('rate', o.rate, 0, false),
    timeLimitS: num('time-limit', o.timeLimit, 0, true),
  };
  if (o.lambda !== undefined) options.lambda = num('lambda', o.lambda, 0, false);
  const catalog = o.catalog ? parseCatalog(readJson(o.catalog, 'catalog')) : PAPER_CATALOG;
  const problem = loadProblem(file, o, catalog);
  const milp = o.solver === 'milp' ? await loadMilpSolver() : null;
  const solve = (p: PlacementProblem, opts: PlanOptions) =>
    milp ? planExact(milp, p, opts) : planHeuristic(p, opts);
  if (o.pareto) {
    const { slaMs: _ignored, ...rest } = options;
    const front = paretoFrontier(problem, { ...rest, solve });
    if (o.json)
      process.stdout.write(
        `${JSON.stringify(
          front.map(({ plan: _p, ...pt }) => pt),
          null,
          2,
        )}\n`,
      );
    else {
      const rows = [
        ['SLA ms', 'latency ms', 'cost', ''],
        ...front.map((p) => [fmtMs(p.slaMs), fmtMs(p.latencyMs), p.cost.toExponential(4), '']),
      ];
      process.stdout.write(
        `cost vs latency frontier (${(options.rate ?? 0) > 0 ? '$/h' : '$/request'})\n${table(rows)}\n`,
      );
    }
    if (front.length === 0) process.exitCode = EXIT_INFEASIBLE;
    return;
  }
  const result = solve(problem, options);
  process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : printPlan(result, options));
  if (result.status === 'infeasible') process.exitCode = EXIT_INFEASIBLE;
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description(
      'Place every op of a graph (.mlir) or profile (.json) on device classes at least cost within an SLA',
    )
    .argument('<file>', 'agent graph in MLIR generic syntax, or profiled t_ij / cost_ij tables as JSON')
    .requiredOption('--sla-ms <n>', 'end-to-end latency bound per request, ms')
    .option('--rate <r>', 'target requests per second (replicas and $/h); 0 = cost per request', '0')
    .option('--catalog <file>', 'device catalog JSON that extends the paper catalog')
    .option('--classes <ids>', 'comma-separated class ids to consider for a graph (default: whole catalog)')
    .option('--count <class=n...>', 'devices available per class, e.g. --count h100=8 cpu=4')
    .option('--solver <name>', 'milp (exact, HiGHS) or heuristic (fast)', 'milp')
    .option('--lambda <x>', 'soft SLA: objective units per ms over the SLA (milp only)')
    .option('--time-limit <s>', 'MILP time limit, seconds', '60')
    .option('--dense', 'time graph ops with vendor dense peaks instead of Table 5')
    .option('--pareto', 'print the cost/latency frontier instead of one plan')
    .option('--json', 'print the result as JSON')
    .action(runPlan);
}
