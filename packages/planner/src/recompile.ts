import type { Change } from './change.js';
import {
  anyPriced,
  type ClassSpec,
  type Compiled,
  type CompiledEdge,
  capacities,
  classTerms,
  compile,
  compileEdge,
  compileTask,
  type EdgeSpec,
  type PlacementProblem,
  rowViews,
  type TaskSpec,
} from './problem.js';

// The compiled form of a changed problem, patched from the previous problem's: compiling 1000 ops
// × 50 classes from scratch is a fifth of an incremental re-plan, and after a count or a few ops'
// times change almost every row is the same.

/** A compiled problem and the parts of the problem it was made from, to notice changes made in place since. */
interface Remembered {
  c: Compiled;
  tasks: TaskSpec[];
  timeMs: number[][];
  devices: number[][];
  usdPerRequest: number[][] | undefined;
  edges: EdgeSpec[];
  classes: ClassSpec[];
}

// By problem object: an entry lives as long as its problem.
const remembered = new WeakMap<PlacementProblem, Remembered>();

/** Keeps c for a later re-plan from its problem (see compileChanged). */
export function remember(c: Compiled): void {
  const p = c.p;
  remembered.set(p, {
    c,
    tasks: [...p.tasks],
    timeMs: [...p.timeMs],
    devices: [...p.devices],
    usdPerRequest: p.usdPerRequest && [...p.usdPerRequest],
    edges: [...p.edges],
    classes: p.classes.map((k) => ({ ...k })),
  });
}

const sameItems = <T>(a: readonly T[] | undefined, b: readonly T[] | undefined) =>
  a === b || (!!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]));

function sameFields(a: object, b: object): boolean {
  const ka = Object.keys(a) as (keyof typeof a)[];
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * The remembered compiled form of p at this rate and γ, or null when there is none or p has been
 * changed since (a row, task, edge or class replaced, a class's fields edited; a number edited
 * inside a row is not noticed, so problems are replaced, not edited, between plans).
 */
function recall(p: PlacementProblem, rate: number, gamma: number): Compiled | null {
  const r = remembered.get(p);
  if (!r || r.c.rate !== rate || r.c.gamma !== gamma) return null;
  const same =
    sameItems(r.tasks, p.tasks) &&
    sameItems(r.timeMs, p.timeMs) &&
    sameItems(r.devices, p.devices) &&
    sameItems(r.usdPerRequest, p.usdPerRequest) &&
    sameItems(r.edges, p.edges) &&
    r.classes.length === p.classes.length &&
    r.classes.every((k, j) => sameFields(k, p.classes[j]!));
  return same ? r.c : null;
}

/** `row` (over the previous classes) over the new ones. */
export function remapped(row: Float64Array, fromClass: Int32Array, out: Float64Array): Float64Array {
  for (let j = 0; j < fromClass.length; j++) out[j] = row[fromClass[j]!]!;
  return out;
}

/**
 * `prev` (compiled from the previous problem) patched for `next`, whose tasks and edges are the
 * same (`change.sameGraph`): the graph's indexes and order are kept, and so are the rows of every
 * unchanged task and of every edge between unchanged tasks (an edge's prices read its ends' rows),
 * shared when the classes are the same and with the gone classes' columns left out otherwise;
 * the rest is compiled as compile does.
 */
function recompile(prev: Compiled, next: PlacementProblem, change: Change): Compiled {
  const { n, rate, gamma } = prev;
  const { fromClass, rowsChanged } = change;
  const m = next.classes.length;
  const sameClasses = m === prev.m && fromClass.every((pj, j) => pj === j);
  // With the same classes only the changed rows are new; else every row is.
  let changed = 0;
  for (let i = 0; i < n; i++) changed += rowsChanged[i]!;
  const coefRows = rowViews(sameClasses ? changed : n, m);
  const unitRows = rowViews(sameClasses ? changed : n, m);
  const coef: Float64Array[] = new Array(n);
  const units: Float64Array[] = new Array(n);
  for (let i = 0, h = 0; i < n; i++) {
    if (sameClasses && !rowsChanged[i]) {
      coef[i] = prev.coef[i]!;
      units[i] = prev.units[i]!;
      continue;
    }
    coef[i] = coefRows[h]!;
    units[i] = unitRows[h++]!;
    if (rowsChanged[i]) compileTask(next, i, rate, coef[i]!, units[i]!);
    else {
      remapped(prev.coef[i]!, fromClass, coef[i]!);
      remapped(prev.units[i]!, fromClass, units[i]!);
    }
  }
  const kept = (e: CompiledEdge) => !rowsChanged[e.u] && !rowsChanged[e.v];
  let fresh = 0;
  for (const e of prev.edges) if (!sameClasses || !kept(e)) fresh++;
  const terms = classTerms(next, rate);
  const rows = new Float64Array(fresh * 3 * m);
  let at = 0;
  const edges = prev.edges.map((e, k) => {
    if (sameClasses && kept(e)) return e;
    const slot = at;
    at += 3 * m;
    if (!kept(e)) return compileEdge(next, next.edges[k]!, e.u, e.v, terms, rows, slot);
    const part = (h: number, row: Float64Array) =>
      remapped(row, fromClass, rows.subarray(slot + h * m, slot + (h + 1) * m));
    return { u: e.u, v: e.v, tau: part(0, e.tau), send: part(1, e.send), recv: part(2, e.recv) };
  });
  return {
    p: next,
    n,
    m,
    order: prev.order,
    rank: prev.rank,
    edges,
    predEdges: prev.predEdges,
    succEdges: prev.succEdges,
    coef,
    units,
    cap: capacities(next),
    gamma,
    priced: fresh === 0 ? prev.priced : anyPriced(edges, gamma),
    rate,
  };
}

/**
 * The compiled form of `next` at this rate and γ (`compiled`): patched from that of `prev` (`from`)
 * when `prev` was planned, and so remembered, and the graph is the same, else compiled (`from`
 * null). Remembered in turn.
 */
export function compileChanged(
  prev: PlacementProblem,
  next: PlacementProblem,
  change: Change,
  rate: number,
  gamma: number,
): { compiled: Compiled; from: Compiled | null } {
  const from = change.sameGraph && next.classes.length > 0 ? recall(prev, rate, gamma) : null;
  const compiled = from ? recompile(from, next, change) : compile(next, rate, gamma);
  remember(compiled);
  return { compiled, from };
}
