// The coordinator's rebalancing in the simulator: every control period the planner's `rebalance` (the
// pure function the live control loop runs) sees the simulator's own measurements of each op over
// the period, the replicas its scale-outs and scale-ins name become the ops' replicas, and the class
// its moves name becomes an op's class (a migration).
import {
  type ClassOption,
  crossingMs,
  type OperatorObservation,
  PlanError,
  type RebalanceConfig,
  type RebalanceState,
  rebalance,
} from '@stitch/planner';
import { SimError, SimErrorCode } from './errors.js';
import { devicesPerReplica } from './fleet.js';
import type { Policy, Snapshot } from './policy.js';

export interface RebalancePolicyOptions {
  /**
   * Task ids or op names the policy never scales. @default vector searches (`memory.vector_search`,
   * and ops of a `vector` dialect): they keep per-key state in one activation, so the coordinator
   * pins them too
   */
  pinned?: readonly string[];
}

/** What one round of `rebalance` is given: the same shapes the live coordinator builds. */
export interface RebalanceInputs {
  observations: OperatorObservation[];
  /** Replicas each class can still take: its devices not held by replicas, in replicas of its ops. */
  freeSlots: Record<string, number>;
  nowMs: number;
}

/**
 * A snapshot as `rebalance` sees it. An op with no execution started in the period is observed at
 * the cost model's time on its class, as the coordinator falls back to the plan's estimate.
 */
export function rebalanceInputs(s: Snapshot, o: RebalancePolicyOptions = {}): RebalanceInputs {
  const p = s.problem;
  const ops = s.ops;
  if (!ops || ops.length !== p.tasks.length)
    throw new SimError(SimErrorCode.Input, 'the rebalance policy needs snapshot.ops, one per task');
  const classIndex = new Map(p.classes.map((c, j) => [c.id, j]));
  const pinned = new Set(o.pinned ?? []);
  const isPinned = (id: string, op: string | undefined) =>
    o.pinned
      ? pinned.has(id) || (op !== undefined && pinned.has(op))
      : op === 'memory.vector_search' || op?.split('.')[0] === 'vector';
  const slack = Math.max(0, s.slaMs - criticalPathMs(s));
  const edgeMs = edgeTimes(s, classIndex);
  const used = new Float64Array(p.classes.length);
  // Free devices are counted in replicas of the widest op on the class, so any scale-out fits.
  const widest = new Float64Array(p.classes.length).fill(1);
  const observations = p.tasks.map((t, i): OperatorObservation => {
    const classId = s.placement[i]!;
    const j = classIndex.get(classId);
    if (j === undefined)
      throw new SimError(SimErrorCode.Input, `snapshot.placement[${i}] names unknown class '${classId}'`);
    const m = ops[i]!;
    const dev = devicesPerReplica(p, i, j);
    used[j]! += m.replicas * dev;
    widest[j] = Math.max(widest[j]!, dev);
    const serviceMs = m.meanServiceMs ?? p.timeMs[i]![j]!;
    // As the coordinator builds them: the cost model's ratio between classes applied to the measured
    // time, over the classes the fleet has and the op can run on, with the change in its edges' time.
    const edgesHere = edgeMs(i, j);
    const alternatives = p.classes.flatMap((c, k): ClassOption[] => {
      const there = p.timeMs[i]![k]!;
      return k !== j && (c.count ?? 0) > 0 && Number.isFinite(there)
        ? [
            {
              classId: c.id,
              serviceMs: (serviceMs * there) / p.timeMs[i]![j]!,
              usdPerHour: c.usdPerHour,
              transferMs: edgeMs(i, k) - edgesHere,
            },
          ]
        : [];
    });
    return {
      opId: t.id,
      classId,
      replicas: m.replicas,
      arrivalPerS: m.arrivals / s.periodS,
      serviceMs,
      queueDepth: m.queued,
      pinned: isPinned(t.id, t.op),
      usdPerHour: p.classes[j]!.usdPerHour,
      alternatives,
      budgetMs: p.timeMs[i]![j]! + slack,
    };
  });
  const freeSlots = Object.fromEntries(
    p.classes.map((c, j) => [c.id, Math.max(0, Math.floor(((c.count ?? 0) - used[j]!) / widest[j]!))]),
  );
  return { observations, freeSlots, nowMs: s.timeS * 1e3 };
}

/**
 * What task i's edges take per request with it on class k and its neighbours where the snapshot
 * places them: as the coordinator prices a move (nothing to a neighbour on the same class, else the
 * edge's fixed time or its bytes over the slower link). Each task's edges are found once, so a round
 * costs the edges times the classes, not the tasks times that.
 */
function edgeTimes(s: Snapshot, classIndex: ReadonlyMap<string, number>): (i: number, k: number) => number {
  const p = s.problem;
  const index = new Map(p.tasks.map((t, i) => [t.id, i]));
  // Per task: each edge it is an end of, with the class its other end is placed on.
  const touching: { e: (typeof p.edges)[number]; otherClass: number }[][] = p.tasks.map(() => []);
  for (const e of p.edges) {
    const from = index.get(e.from);
    const to = index.get(e.to);
    if (from === undefined || to === undefined || from === to) continue;
    const toClass = classIndex.get(s.placement[to]!);
    const fromClass = classIndex.get(s.placement[from]!);
    if (toClass !== undefined) touching[from]!.push({ e, otherClass: toClass });
    if (fromClass !== undefined) touching[to]!.push({ e, otherClass: fromClass });
  }
  return (i, k) => {
    let ms = 0;
    for (const { e, otherClass } of touching[i]!)
      if (otherClass !== k)
        ms += e.transferMs ?? crossingMs(e.bytes, p.classes[k]!.linkGBps, p.classes[otherClass]!.linkGBps);
    return ms;
  };
}

/** The longest chain of the placed ops' times through their dependencies (transfers left out), ms. */
function criticalPathMs(s: Snapshot): number {
  const p = s.problem;
  const index = new Map(p.tasks.map((t, i) => [t.id, i]));
  const classIndex = new Map(p.classes.map((c, j) => [c.id, j]));
  const finish = new Float64Array(p.tasks.length).fill(-1);
  const at = (i: number): number => {
    if (finish[i]! >= 0) return finish[i]!;
    finish[i] = 0; // a cycle ends here
    let before = 0;
    for (const d of p.tasks[i]!.deps) {
      const k = index.get(d);
      if (k !== undefined) before = Math.max(before, at(k));
    }
    finish[i] = before + p.timeMs[i]![classIndex.get(s.placement[i]!)!]!;
    return finish[i]!;
  };
  let longest = 0;
  for (let i = 0; i < p.tasks.length; i++) longest = Math.max(longest, at(i));
  return longest;
}

/** The planner's config errors as the simulator's: a bad policy option is bad input. */
function asSimError(err: unknown): unknown {
  return err instanceof PlanError ? new SimError(SimErrorCode.Input, err.message, { cause: err }) : err;
}

/**
 * Scales replicas of hot ops out and of idle ops in with the planner's `rebalance` (thresholds,
 * cooldowns and caps from `config`); its state rides in the decision, so the policy holds none and
 * one instance can serve several runs. Pair it with `replicas: 'one'` (or a fleet larger than the
 * ops need), since under `fill` every device is held and a scale-out has nowhere to go.
 */
export function rebalancePolicy(config: RebalanceConfig = {}, options: RebalancePolicyOptions = {}): Policy {
  try {
    rebalance([], {}, config, 0); // checks the config now rather than at the first control period
  } catch (err) {
    throw asSimError(err);
  }
  return (s) => {
    const { observations, freeSlots, nowMs } = rebalanceInputs(s, options);
    const r = rebalance(observations, freeSlots, config, nowMs, s.state as RebalanceState | undefined);
    const moves = new Map(r.actions.flatMap((a) => (a.kind === 'move' ? [[a.opId, a.toClassId!]] : [])));
    const replicas = Object.fromEntries(r.actions.map((a) => [a.opId, a.to]));
    if (moves.size === 0) return { replicas, state: r.state };
    const placement = s.problem.tasks.map((t, i) => moves.get(t.id) ?? s.placement[i]!);
    return { placement, replicas, state: r.state };
  };
}
