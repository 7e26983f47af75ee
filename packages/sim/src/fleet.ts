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

/**
 * Replicas per task: each class's devices are shared among the tasks placed on it in proportion to
 * the device time they need per request (time × devices per replica), so every task on a class
 * sees about the same utilisation. Each task gets at least one replica; the rest go one replica at
 * a time to the task whose per-replica load is highest.
 */
export function allocate(
  p: PlacementProblem,
  assign: Int32Array,
  counts: Int32Array,
  loadScale: Float64Array,
): Int32Array {
  const n = assign.length;
  const replicas = new Int32Array(n);
  for (let j = 0; j < counts.length; j++) {
    const on: number[] = [];
    for (let i = 0; i < n; i++) if (assign[i] === j) on.push(i);
    if (on.length === 0) continue;
    const dev = (i: number) => Math.max(1, p.devices[i]![j]!);
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

/** $ per hour of the whole fleet: every device is paid for whether busy or idle. */
export function fleetUsdPerHour(p: PlacementProblem, counts: Int32Array): number {
  let sum = 0;
  for (let j = 0; j < counts.length; j++) sum += counts[j]! * p.classes[j]!.usdPerHour;
  return sum;
}
