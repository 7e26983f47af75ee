import type { EdgeSpec, PlacementProblem } from './problem.js';

// What changed between the problem a plan was made for and a new one, for the incremental re-plan.

/** How a new problem relates to the previous one, index by index. */
export interface Change {
  /** Previous index of each new class. */
  fromClass: Int32Array;
  /** New index of each previous class, −1 where it is gone. */
  toClass: Int32Array;
  /**
   * fromClass as runs of consecutive columns, (previous index, new index, length) each: a row over
   * the previous classes becomes one over the new ones by copying a few runs (see remapped).
   */
  columns: Int32Array;
  /** Previous index of each new task. */
  fromTask: Int32Array;
  /** Tasks whose time, devices or explicit cost changed on some class. */
  rowsChanged: Uint8Array;
  /** Tasks whose row or an incident edge changed. */
  dirty: Uint8Array;
  /** The same tasks and edges in the same order: only rows, counts or the set of classes changed. */
  sameGraph: boolean;
}

function sameRow(a: readonly number[] | undefined, b: readonly number[], map: Int32Array): boolean {
  if (!a) return false;
  if (a === b && a.length === map.length) return map.every((pj, j) => pj === j);
  for (let j = 0; j < b.length; j++) if (a[map[j]!] !== b[j]) return false;
  return true;
}

const sameEdge = (a: EdgeSpec, b: EdgeSpec) =>
  a.from === b.from &&
  a.to === b.to &&
  a.bytes === b.bytes &&
  a.transferMs === b.transferMs &&
  a.usdPerTransfer === b.usdPerTransfer;

const edgeKey = (e: EdgeSpec) =>
  `${e.from}\u0000${e.to}\u0000${e.bytes}\u0000${e.transferMs}\u0000${e.usdPerTransfer}`;

/**
 * How `next` relates to `prev`, or null when the change is not local: a class added or repriced
 * (its $/h, link or egress), or a task added.
 */
export function changeBetween(prev: PlacementProblem, next: PlacementProblem): Change | null {
  const m = next.classes.length;
  const n = next.tasks.length;
  const prevClass = new Map(prev.classes.map((k, j) => [k.id, j]));
  const fromClass = new Int32Array(m);
  const toClass = new Int32Array(prev.classes.length).fill(-1);
  for (let j = 0; j < m; j++) {
    const cls = next.classes[j]!;
    const pj = prevClass.get(cls.id);
    if (pj === undefined) return null;
    const old = prev.classes[pj]!;
    if (
      old.usdPerHour !== cls.usdPerHour ||
      old.linkGBps !== cls.linkGBps ||
      (old.egressUsdPerGB ?? 0) !== (cls.egressUsdPerGB ?? 0)
    )
      return null;
    fromClass[j] = pj;
    toClass[pj] = j;
  }
  // Tasks usually keep their order: look an id up only where it moved.
  let prevTask: Map<string, number> | null = null;
  let sameGraph = n === prev.tasks.length && next.edges.length === prev.edges.length;
  const fromTask = new Int32Array(n);
  const rowsChanged = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const id = next.tasks[i]!.id;
    let pi: number | undefined = i;
    if (prev.tasks[i]?.id !== id) {
      sameGraph = false;
      prevTask ??= new Map(prev.tasks.map((t, h) => [t.id, h]));
      pi = prevTask.get(id);
    }
    if (pi === undefined) return null;
    fromTask[i] = pi;
    const cost = next.usdPerRequest?.[i];
    if (
      !sameRow(prev.timeMs[pi], next.timeMs[i]!, fromClass) ||
      !sameRow(prev.devices[pi], next.devices[i]!, fromClass) ||
      (cost !== undefined && !sameRow(prev.usdPerRequest?.[pi], cost, fromClass))
    )
      rowsChanged[i] = 1;
  }
  const dirty = Uint8Array.from(rowsChanged);
  // Edges usually come in the same order: compare pairwise, and by content only where that fails.
  let before: Set<string> | null = null;
  let index: Map<string, number> | null = null;
  next.edges.forEach((spec, k) => {
    const old = prev.edges[k];
    if (old && sameEdge(old, spec)) return;
    sameGraph = false;
    before ??= new Set(prev.edges.map(edgeKey));
    if (before.has(edgeKey(spec))) return;
    index ??= new Map(next.tasks.map((t, i) => [t.id, i]));
    for (const end of [spec.from, spec.to]) {
      const i = index.get(end);
      if (i !== undefined) dirty[i] = 1;
    }
  });
  return { fromClass, toClass, columns: columnRuns(fromClass), fromTask, rowsChanged, dirty, sameGraph };
}

function columnRuns(fromClass: Int32Array): Int32Array {
  const runs: number[] = [];
  for (let j = 0; j < fromClass.length; ) {
    let end = j + 1;
    while (end < fromClass.length && fromClass[end] === fromClass[end - 1]! + 1) end++;
    runs.push(fromClass[j]!, j, end - j);
    j = end;
  }
  return Int32Array.from(runs);
}
