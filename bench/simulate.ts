// Fleet-scale simulation: the Llama 3 8B tool agent (packages/ir/samples) on a heterogeneous fleet
// of 6 device classes and on a homogeneous H100 fleet (plus the CPU hosts both need), each sized
// for the same peak, over a compressed diurnal day with bursts, with the static, the re-plan and the
// rebalance policy (the coordinator's replica scaling: the planner's `rebalance` each control period,
// here moving devices between the ops of a class, since the fleet starts with every device held).
// One child process per run so that max_rss_mb is that run's own. Imports the built
// packages (run `pnpm --filter @stitch/sim... build` first). Usage: pnpm bench simulate [--quick]
//   [--devices=10000] [--requests=1000000] [--sla-ms=2000] [--seed=1]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PAPER_CATALOG } from '../packages/cost/dist/index.js';
import { defaultRegistry, demandTable, PassManager, parseGraph } from '../packages/ir/dist/index.js';
import { type PlacementProblem, planHeuristic, problemFromDemand } from '../packages/planner/dist/index.js';
import {
  type Policy,
  rebalancePolicy,
  replanOnUtilisation,
  simulate,
  staticPolicy,
} from '../packages/sim/dist/index.js';

const GRAPH = new URL('../packages/ir/samples/tool-agent.llama3-8b.mlir', import.meta.url);
const FLEETS = {
  heterogeneous: ['cpu', 'a100-80g', 'gaudi3', 'mi300x', 'h100', 'b200'],
  'homogeneous-h100': ['cpu', 'h100'],
} as const;
type FleetName = keyof typeof FLEETS;
/** Planned share of a class's devices at the peak; the rest is headroom for noise and bursts. */
const TARGET_UTILISATION = 0.75;
const PEAK_RATIO = 3;

interface Run {
  fleet: FleetName;
  policy: 'static' | 'replan' | 'rebalance';
  devices: number;
  requests: number;
  slaMs: number;
  seed: number;
}

function arg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.slice(name.length + 3)) : fallback;
}

function graphRows() {
  const graph = parseGraph(readFileSync(GRAPH, 'utf8'), 'tool-agent.llama3-8b.mlir');
  const annotated = new PassManager({ registry: defaultRegistry() })
    .add('decompose')
    .add('unroll-loops')
    .add('annotate-demand')
    .run(graph);
  return demandTable(annotated);
}

/**
 * Sizes a fleet of about `devices` for the peak rate: the planner's device use per class at a
 * probe rate scales linearly, so the heterogeneous fleet's peak rate is the one whose plan fills
 * TARGET_UTILISATION of the devices; classes the plan leaves unused share the remainder as spare.
 * The homogeneous fleet is sized for the same peak rate.
 */
function sizeFleet(
  rows: ReturnType<typeof graphRows>,
  run: Run,
): { problem: PlacementProblem; peakRate: number } {
  const use = (classes: readonly string[], rate: number) => {
    const p = problemFromDemand(rows, { catalog: PAPER_CATALOG, classes });
    const plan = planHeuristic(p, { slaMs: run.slaMs, rate });
    if (plan.status === 'infeasible') throw new Error(`sizing plan infeasible: ${plan.message}`);
    return plan.classUse;
  };
  const probe = 100;
  const hetero = FLEETS.heterogeneous;
  const used = use(hetero, probe).reduce((a, c) => a + c.devices, 0);
  const peakRate = (probe * TARGET_UTILISATION * run.devices) / used;
  const classes = FLEETS[run.fleet];
  const counts: Record<string, number> = {};
  for (const c of use(classes, peakRate)) counts[c.classId] = Math.ceil(c.devices / TARGET_UTILISATION);
  const unused = classes.filter((id) => counts[id] === 0);
  if (run.fleet === 'heterogeneous' && unused.length > 0) {
    const spare = Math.max(0, run.devices - Object.values(counts).reduce((a, b) => a + b, 0));
    for (const id of unused) counts[id] = Math.floor(spare / unused.length);
  }
  return { problem: problemFromDemand(rows, { catalog: PAPER_CATALOG, classes, counts }), peakRate };
}

function policyOf(run: Run, problem: PlacementProblem): Policy {
  if (run.policy === 'static') return staticPolicy;
  if (run.policy === 'replan') return replanOnUtilisation();
  // An op may hold every device of its class, and every op may change in one round.
  const maxReplicas = Math.max(...problem.classes.map((c) => c.count ?? 1));
  return rebalancePolicy({ maxReplicas, maxChangesPerRound: problem.tasks.length });
}

function child(run: Run): void {
  const { problem, peakRate } = sizeFleet(graphRows(), run);
  const base = peakRate / PEAK_RATIO;
  // A compressed day: the period is what the requests take at the day's mean rate.
  const periodS = run.requests / (base * (1 + (PEAK_RATIO - 1) / 2));
  const t0 = performance.now();
  const r = simulate({
    problem,
    slaMs: run.slaMs,
    arrivals: {
      kind: 'generator',
      rate: base,
      diurnal: { peakRatio: PEAK_RATIO, periodS },
      bursts: { everyS: periodS / 8, durationS: periodS / 100, factor: 1.5, offsetS: periodS / 16 },
    },
    requests: run.requests,
    seed: run.seed,
    noise: { kind: 'lognormal', cv: 0.2 },
    planRate: peakRate,
    policy: policyOf(run, problem),
    controlPeriodS: periodS / 48,
    windowS: periodS / 24,
  });
  const wallS = (performance.now() - t0) / 1e3;
  const line = {
    bench: 'simulate',
    fleet: run.fleet,
    heterogeneous: run.fleet === 'heterogeneous',
    policy: run.policy,
    devices: r.devices,
    classes: Object.fromEntries(r.classes.map((c) => [c.classId, c.devices])),
    modelled: true,
    requests: r.requests,
    peak_rps: Number(peakRate.toFixed(1)),
    sla_ms: run.slaMs,
    wall_s: Number(wallS.toFixed(2)),
    max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    events: r.events,
    events_per_s: Math.round(r.eventsPerS),
    sla_attainment: Number(r.slaAttainment.toFixed(5)),
    p50_ms: Number(r.latencyMs.p50.toFixed(1)),
    p99_ms: Number(r.latencyMs.p99.toFixed(1)),
    usd_per_1k: Number(r.usdPer1k.toFixed(4)),
    migrations: r.migrations,
    replica_changes: r.replicaChanges.scaleOut + r.replicaChanges.scaleIn,
    rejected: r.rejected,
    utilisation: Object.fromEntries(r.classes.map((c) => [c.classId, Number(c.utilisation.toFixed(3))])),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function main(): void {
  const childArg = process.argv.find((a) => a.startsWith('--child='));
  if (childArg) {
    child(JSON.parse(childArg.slice('--child='.length)) as Run);
    return;
  }
  const quick = process.argv.includes('--quick');
  const devices = arg('devices', quick ? 1000 : 10_000);
  const requests = arg('requests', quick ? 20_000 : 1_000_000);
  const slaMs = arg('sla-ms', 2000);
  const seed = arg('seed', 1);
  const self = fileURLToPath(import.meta.url);
  for (const fleet of Object.keys(FLEETS) as FleetName[]) {
    for (const policy of ['static', 'replan', 'rebalance'] as const) {
      const run: Run = { fleet, policy, devices, requests, slaMs, seed };
      const r = spawnSync(
        process.execPath,
        ['--import', '@stitch/typescript-loader', self, `--child=${JSON.stringify(run)}`],
        {
          stdio: ['ignore', 'inherit', 'inherit'],
        },
      );
      if (r.status !== 0) process.exitCode = 1;
    }
  }
}

main();
