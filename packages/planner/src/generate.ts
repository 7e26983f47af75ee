import type { PlanFeasible } from './plan.js';
import { compile, type PlacementProblem } from './problem.js';
import { forward } from './schedule.js';

/** Small deterministic PRNG (mulberry32) so generated problems are reproducible from a seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenerateOptions {
  ops: number;
  classes: number;
  seed: number;
  /** Where the SLA sits between the fastest (0) and the cheapest (1) per-task choice. @default 0.4 */
  tightness?: number;
}

/**
 * A layered random DAG (each op consumes 1-3 ops of earlier layers) over classes with different
 * compute and bandwidth peaks and prices, so no class dominates; some classes cannot hold some ops.
 * Also returns an SLA between the fastest and cheapest per-task placements.
 */
export function generateProblem(o: GenerateOptions): { problem: PlacementProblem; slaMs: number } {
  const r = rng(o.seed);
  const classes = Array.from({ length: o.classes }, (_, j) => {
    const flops = 10 ** (1 + 2 * r());
    const bw = 10 ** (1 + 2 * r());
    return {
      id: `c${j}`,
      usdPerHour: 0.2 * (flops / 10) ** 0.6 * (bw / 10) ** 0.3 * (0.7 + 0.6 * r()),
      linkGBps: 5 + 45 * r(),
      memory: 10 ** (1 + 1.5 * r()),
      flops,
      bw,
    };
  });
  const maxMemory = Math.max(...classes.map((c) => c.memory));
  const width = Math.max(1, Math.round(Math.sqrt(o.ops)));
  const tasks: PlacementProblem['tasks'] = [];
  const edges: PlacementProblem['edges'] = [];
  const timeMs: number[][] = [];
  const devices: number[][] = [];
  for (let i = 0; i < o.ops; i++) {
    const layer = Math.floor(i / width);
    const deps: string[] = [];
    if (layer > 0) {
      const k = 1 + Math.floor(r() * 3);
      for (let d = 0; d < k; d++) {
        const lo = Math.max(0, (layer - 2) * width);
        const dep = `t${lo + Math.floor(r() * (layer * width - lo))}`;
        if (!deps.includes(dep)) deps.push(dep);
      }
    }
    for (const dep of deps) edges.push({ from: dep, to: `t${i}`, bytes: 1e6 * 10 ** (2 * r()) });
    tasks.push({ id: `t${i}`, deps });
    const work = 10 ** (1 + 2 * r());
    const intensity = 10 ** (2 * r() - 1);
    // Every op fits at least the largest-memory class.
    const mem = Math.min(10 ** (1.5 * r()), maxMemory);
    timeMs.push(
      classes.map((c) =>
        mem > c.memory ? Infinity : Math.max(work / c.flops, work / intensity / c.bw) + 0.05,
      ),
    );
    devices.push(classes.map(() => 1));
  }
  const problem: PlacementProblem = {
    tasks,
    classes: classes.map(({ id, usdPerHour, linkGBps }) => ({ id, usdPerHour, linkGBps })),
    timeMs,
    devices,
    edges,
  };
  // SLA between the latencies (transfers included) of the fastest and the cheapest per-task choice.
  const c = compile(problem);
  const latencyOf = (key: (i: number, j: number) => number) => {
    const assign = Int32Array.from(timeMs, (row, i) =>
      row.reduce((b, _, j) => (key(i, j) < key(i, b) ? j : b), 0),
    );
    return forward(c, assign).latencyMs;
  };
  const fastest = latencyOf((i, j) => timeMs[i]![j]!);
  const cheapest = latencyOf((i, j) => c.coef[i]![j]!);
  const slaMs = fastest + (o.tightness ?? 0.4) * Math.max(0, cheapest - fastest);
  return { problem, slaMs };
}

/** The three perturbations of the incremental re-plan, each applied to a copy of the problem. */
export type Perturbation = 'op-time-doubled' | 'class-count-halved' | 'class-removed';
export const PERTURBATIONS: readonly Perturbation[] = [
  'op-time-doubled',
  'class-count-halved',
  'class-removed',
];

function copy(p: PlacementProblem): PlacementProblem {
  return {
    ...p,
    classes: p.classes.map((c) => ({ ...c })),
    timeMs: p.timeMs.map((r) => [...r]),
    devices: p.devices.map((r) => [...r]),
  };
}

/** The class holding the most devices in the plan. */
function busiest(plan: PlanFeasible): number {
  let best = 0;
  plan.classUse.forEach((u, j) => {
    if (u.devices > plan.classUse[best]!.devices) best = j;
  });
  return best;
}

/**
 * - op-time-doubled: the longest op on the critical path takes twice as long on its current class
 *   (what a measured drift does), so its cost there doubles too;
 * - class-count-halved: the class holding the most devices keeps half its count;
 * - class-removed: that class disappears.
 */
export function perturbProblem(
  p: PlacementProblem,
  plan: PlanFeasible,
  kind: Perturbation,
): PlacementProblem {
  const q = copy(p);
  if (kind === 'op-time-doubled') {
    let worst = -1;
    for (const id of plan.criticalPath) {
      const i = p.tasks.findIndex((t) => t.id === id);
      if (worst < 0 || plan.placements[i]!.timeMs > plan.placements[worst]!.timeMs) worst = i;
    }
    const j = p.classes.findIndex((c) => c.id === plan.placements[worst]!.classId);
    q.timeMs[worst]![j]! *= 2;
    return q;
  }
  const j = busiest(plan);
  if (kind === 'class-count-halved') {
    q.classes[j]!.count = Math.floor((q.classes[j]!.count ?? 0) / 2);
    return q;
  }
  q.classes.splice(j, 1);
  q.timeMs = q.timeMs.map((r) => r.filter((_, k) => k !== j));
  q.devices = q.devices.map((r) => r.filter((_, k) => k !== j));
  return q;
}

/** Device counts that bind: 1.5 × what a first plan uses, plus 5 % of the ops on every class. */
export function withBindingCounts(p: PlacementProblem, plan: PlanFeasible): PlacementProblem {
  const q = copy(p);
  const spare = Math.ceil(0.05 * p.tasks.length);
  q.classes.forEach((c, j) => {
    c.count = Math.ceil(plan.classUse[j]!.devices * 1.5) + spare;
  });
  return q;
}
