import type { PlacementProblem } from '@stitch/planner';
import { SimError, SimErrorCode } from './errors.js';

/** The most devices one class may hold in a simulated fleet. */
export const MAX_DEVICES_PER_CLASS = 10_000_000;

/** Device count per class from the problem; every class needs a finite count in a simulation. */
export function fleetCounts(p: PlacementProblem): Int32Array {
  return Int32Array.from(p.classes, (c, j) => {
    const n = c.count;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_DEVICES_PER_CLASS) {
      throw new SimError(
        SimErrorCode.Input,
        `options.problem.classes[${j}] (${c.id}) needs a device count, an integer 0..${MAX_DEVICES_PER_CLASS}; got ${n}`,
      );
    }
    return n;
  });
}

/** Class index per task from class ids, checked against the problem (known class, finite time). */
export function resolvePlacement(p: PlacementProblem, ids: readonly string[], what: string): Int32Array {
  if (!Array.isArray(ids) || ids.length !== p.tasks.length) {
    throw new SimError(SimErrorCode.Input, `${what} must list one class id per task (${p.tasks.length})`);
  }
  const index = new Map(p.classes.map((c, j) => [c.id, j]));
  return Int32Array.from(ids, (id, i) => {
    const j = index.get(id);
    if (j === undefined) throw new SimError(SimErrorCode.Input, `${what}[${i}] names unknown class '${id}'`);
    if (!Number.isFinite(p.timeMs[i]![j]!)) {
      throw new SimError(SimErrorCode.Input, `${what}[${i}]: task ${p.tasks[i]!.id} cannot run on ${id}`);
    }
    return j;
  });
}

/** How a placement's replicas are set: share out every device, or one replica per task. */
export type ReplicaMode = 'fill' | 'one';

/**
 * Replicas per task. `fill`: each class's devices are shared among the tasks placed on it in
 * proportion to the device time they need per request (time × devices per replica), so every task
 * on a class sees about the same utilisation; each task gets at least one replica, the rest go one
 * replica at a time to the task whose per-replica load is highest. `one`: one replica per task, as
 * the coordinator deploys; the rest of the devices stay free for a policy to scale into.
 */
export function allocate(
  p: PlacementProblem,
  assign: Int32Array,
  counts: Int32Array,
  loadScale: Float64Array,
  mode: ReplicaMode = 'fill',
): Int32Array {
  const n = assign.length;
  const replicas = new Int32Array(n);
  for (let j = 0; j < counts.length; j++) {
    const on: number[] = [];
    for (let i = 0; i < n; i++) if (assign[i] === j) on.push(i);
    if (on.length === 0) continue;
    const dev = (i: number) => devicesPerReplica(p, i, j);
    const need = (i: number) => p.timeMs[i]![j]! * loadScale[i]! * dev(i);
    let left = counts[j]!;
    let total = 0;
    for (const i of on) {
      left -= dev(i);
      total += need(i);
      replicas[i] = 1;
    }
    if (left < 0) {
      throw new SimError(
        SimErrorCode.Capacity,
        `class ${p.classes[j]!.id} has ${counts[j]} devices, fewer than one replica of each of its ${on.length} tasks needs; add devices or place tasks elsewhere`,
      );
    }
    if (mode === 'one') continue;
    // Proportional share first, then the remainder greedily.
    for (const i of on) {
      if (total > 0) replicas[i]! += Math.floor((left * need(i)) / total / dev(i));
    }
    for (const i of on) left -= (replicas[i]! - 1) * dev(i);
    for (;;) {
      let best = -1;
      let bestLoad = -1;
      for (const i of on) {
        const load = need(i) / (replicas[i]! * dev(i));
        if (dev(i) <= left && load > bestLoad) {
          best = i;
          bestLoad = load;
        }
      }
      if (best < 0) break;
      replicas[best]!++;
      left -= dev(best);
    }
  }
  return replicas;
}

/** Devices one replica of task i holds on class j. */
export function devicesPerReplica(p: PlacementProblem, i: number, j: number): number {
  return Math.max(1, p.devices[i]![j]!);
}

/**
 * A policy's replicas per task id applied to `current` (tasks it does not name keep theirs),
 * checked: known tasks, integers ≥ 1, and no class holding more devices than it has.
 */
export function resolveReplicas(
  p: PlacementProblem,
  assign: Int32Array,
  counts: Int32Array,
  current: Int32Array,
  decided: Readonly<Record<string, number>>,
  what: string,
): Int32Array {
  if (typeof decided !== 'object' || decided === null)
    throw new SimError(SimErrorCode.Input, `${what} must map task ids to replica counts`);
  const index = new Map(p.tasks.map((t, i) => [t.id, i]));
  const out = Int32Array.from(current);
  for (const [id, k] of Object.entries(decided)) {
    const i = index.get(id);
    if (i === undefined) throw new SimError(SimErrorCode.Input, `${what} names unknown task '${id}'`);
    if (!Number.isSafeInteger(k) || k < 1)
      throw new SimError(
        SimErrorCode.Input,
        `${what}.${id} must be an integer ≥ 1, got ${JSON.stringify(k)}`,
      );
    out[i] = k;
  }
  const used = new Float64Array(counts.length);
  for (let i = 0; i < out.length; i++) used[assign[i]!]! += out[i]! * devicesPerReplica(p, i, assign[i]!);
  used.forEach((u, j) => {
    if (u > counts[j]!)
      throw new SimError(
        SimErrorCode.Input,
        `${what} needs ${u} devices of class ${p.classes[j]!.id}, which has ${counts[j]}`,
      );
  });
  return out;
}

/** $ per hour of the whole fleet: every device is paid for whether busy or idle. */
export function fleetUsdPerHour(p: PlacementProblem, counts: Int32Array): number {
  let sum = 0;
  for (let j = 0; j < counts.length; j++) sum += counts[j]! * p.classes[j]!.usdPerHour;
  return sum;
}
