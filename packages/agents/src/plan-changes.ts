import { criticalPathMs } from './autoscaler.js';
import type { Deployment, MigrationEvent, MovePhases } from './deployment.js';
import type { NodeClass, OpReplica, PlacedOp, PlanOutcome } from './placement.js';

/** An operator a re-plan moves: where the plan wants it (`op`), its record before (`was`), where it runs (`from`). */
export interface PlannedMove {
  op: PlacedOp;
  was: PlacedOp;
  from: string;
}

/** A deployment's record after a re-plan, and what it takes to get there. */
export interface ReplannedRecord {
  next: Deployment;
  /** Replicas whose node left or is of another class than their op's now: retired. */
  dropped: { type: string; replica: OpReplica }[];
  moves: PlannedMove[];
  /** Without moves: whether `next` still differs from the record (nodes or classes), so must be saved. */
  behind: boolean;
}

/**
 * The record a re-plan gives `old`: `plan` placed against `nodes`, where `at[i]` is the live node
 * running `old.ops[i]` (undefined when none does). Replicas stay while their node is live and of the
 * op's (new) class; the rest are retired. A re-plan adds none (those the plan sizes for a rate are for
 * a first placement): the control loop does, as it measures the load.
 */
export function recordAfterReplan(
  old: Deployment,
  plan: PlanOutcome,
  nodes: NodeClass[],
  at: (string | undefined)[],
): ReplannedRecord {
  const next: Deployment = { ...old, ...plan, version: old.version + 1 };
  const classOf = new Map(nodes.map((n) => [n.nodeId, n.classId]));
  const dropped: ReplannedRecord['dropped'] = [];
  next.ops = next.ops.map(({ replicas: _planned, ...o }, i) => {
    const had = old.ops[i]?.replicas ?? [];
    const kept = had.filter((r) => classOf.get(r.node) === o.classId);
    for (const r of had) if (!kept.includes(r)) dropped.push({ type: o.actorType, replica: r });
    return kept.length > 0 ? { ...o, replicas: kept } : o;
  });
  const moves = next.ops.flatMap((o, i) =>
    o.node === at[i] ? [] : [{ op: o, was: old.ops[i]!, from: at[i] ?? old.ops[i]!.node }],
  );
  // Operators a dead leader moved (its moves finish between the nodes) are where the plan wants them,
  // under their old class: the record is behind though nothing moves.
  const behind = next.ops.some((o, i) => o.node !== old.ops[i]?.node || o.classId !== old.ops[i]?.classId);
  return { next, dropped, moves, behind };
}

/**
 * The record after op `op` moves to `node`, of another class: the op's estimate is the plan's for
 * that class, scaled as its measured estimate was for its old class; the deployment's latency and
 * cost follow.
 */
export function recordAfterClassMove(old: Deployment, op: PlacedOp, node: NodeClass): Deployment {
  const raw = old.rawMs[op.id] ?? {};
  const here = raw[op.classId];
  const estimatedMs = (raw[node.classId] ?? op.estimatedMs) * (here && here > 0 ? op.estimatedMs / here : 1);
  const moved: PlacedOp = {
    ...op,
    classId: node.classId,
    node: node.nodeId,
    modelled: node.modelled,
    estimatedMs,
    usdPerRequest: (estimatedMs / 3.6e6) * (old.usdPerHour[node.classId] ?? 0),
  };
  const ops = old.ops.map((o) => (o.id === op.id ? moved : o));
  return {
    ...old,
    ops,
    version: old.version + 1,
    latencyMs: old.latencyMs + criticalPathMs(ops) - criticalPathMs(old.ops),
    usdPerRequest: old.usdPerRequest + moved.usdPerRequest - op.usdPerRequest,
  };
}

/** Milliseconds rounded to 0.1, as events report them. */
export const tenth = (ms: number) => Math.round(ms * 10) / 10;

const roundPhases = (p: MovePhases): MovePhases => ({
  how: p.how,
  precopyMs: tenth(p.precopyMs),
  pausedMs: tenth(p.pausedMs),
  stopMs: tenth(p.stopMs),
  spawnMs: tenth(p.spawnMs),
  configureMs: tenth(p.configureMs),
});

/** The event of operators moved for `reason`, `ms` after the moves began. */
export function migrationEvent(
  deployment: string,
  reason: string,
  moved: (PlannedMove & { phases: MovePhases })[],
  ms: number,
): MigrationEvent {
  return {
    deployment,
    reason,
    moved: moved.map((m) => ({
      opId: m.op.id,
      from: m.from,
      to: m.op.node,
      fromClass: m.was.classId,
      toClass: m.op.classId,
      phases: roundPhases(m.phases),
    })),
    ms,
    at: Date.now(),
  };
}

/** One log line for a migration: each operator's classes and how long each phase of its move took. */
export function describeMigration(ev: MigrationEvent): string {
  const ops = ev.moved.map((m) => {
    const p = m.phases;
    const how =
      p?.how === 'live'
        ? `live: copy ${p.precopyMs} ms while serving, paused ${p.pausedMs}`
        : `restart: stop ${p?.stopMs} + spawn ${p?.spawnMs}`;
    return `${m.opId} ${m.fromClass}→${m.toClass} (${how} + configure ${p?.configureMs} ms)`;
  });
  return `migrated ${ev.moved.length} operator(s) of ${ev.deployment} (${ev.reason}) in ${ev.ms.toFixed(0)} ms: ${ops.join(', ')}`;
}
