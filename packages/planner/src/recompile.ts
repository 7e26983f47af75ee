import type { Change } from './change.js';
import {
  anyPriced,
  type ClassSpec,
  type Compiled,
  capacities,
  classTerms,
  compile,
  compileTask,
  type EdgeRows,
  type EdgeSpec,
  edgePrices,
  edgeRows,
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
function recall(p: PlacementProblem, rate: number, gamma: number, sharedRate: number): Compiled | null {
  const r = remembered.get(p);
  if (!r || r.c.rate !== rate || r.c.gamma !== gamma || r.c.sharedRate !== sharedRate) return null;
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

/** Rows of `mPrev` numbers (over the previous classes), one after another, over the new ones. */
function remappedRows(rows: Float64Array, mPrev: number, change: Change, out: Float64Array): void {
  const m = change.fromClass.length;
  for (let at = 0, from = 0; at < out.length; at += m, from += mPrev)
    copyRuns(rows, from, change.columns, out, at);
}

function copyRuns(row: Float64Array, from: number, runs: Int32Array, out: Float64Array, at: number): void {
  for (let r = 0; r < runs.length; r += 3) {
    const src = from + runs[r]!;
    const dst = at + runs[r + 1]!;
    const len = runs[r + 2]!;
    for (let j = 0; j < len; j++) out[dst + j] = row[src + j]!;
  }
}

/** `row` (over the previous classes) over the new ones. */
export function remapped(row: Float64Array, change: Change, out: Float64Array): Float64Array {
  copyRuns(row, 0, change.columns, out, 0);
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
    if (rowsChanged[i]) compileTask(next, i, rate, coef[i]!, units[i]!, prev.sharedRate);
    else {
      remapped(prev.coef[i]!, change, coef[i]!);
      remapped(prev.units[i]!, change, units[i]!);
    }
  }
  // An edge's prices read its ends' rows (τ only the edge and the classes' links): the rows of an
  // edge between unchanged tasks are kept, the others' prices compiled again.
  const fresh: number[] = [];
  prev.edges.forEach(({ u, v }, e) => {
    if (rowsChanged[u] || rowsChanged[v]) fresh.push(e);
  });
  const terms = classTerms(next, rate);
  let rows: EdgeRows = prev;
  if (!sameClasses) {
    rows = edgeRows(prev.edges.length, m);
    remappedRows(prev.tau, prev.m, change, rows.tau);
    prev.edges.forEach((_, e) => {
      remapped(prev.send[e]!, change, rows.send[e]!);
      remapped(prev.recv[e]!, change, rows.recv[e]!);
    });
  } else if (fresh.length > 0) {
    const send = rowViews(fresh.length, m);
    const recv = rowViews(fresh.length, m);
    rows = { tau: prev.tau, send: [...prev.send], recv: [...prev.recv] };
    fresh.forEach((e, h) => {
      rows.send[e] = send[h]!;
      rows.recv[e] = recv[h]!;
    });
  }
  for (const e of fresh) edgePrices(next, next.edges[e]!, prev.edges[e]!.u, prev.edges[e]!.v, terms, rows, e);
  return {
    p: next,
    n,
    m,
    order: prev.order,
    rank: prev.rank,
    edges: prev.edges,
    predEdges: prev.predEdges,
    succEdges: prev.succEdges,
    flat: prev.flat,
    tau: rows.tau,
    send: rows.send,
    recv: rows.recv,
    coef,
    units,
    cap: capacities(next),
    gamma,
    priced: rows === prev ? prev.priced : anyPriced(rows, gamma),
    rate,
    sharedRate: prev.sharedRate,
  };
}

/**
 * The compiled form of `next` at this rate, γ and shared rate (`compiled`): patched from that of
 * `prev` (`from`) when `prev` was planned, and so remembered, and the graph is the same, else
 * compiled (`from` null). Remembered in turn.
 */
export function compileChanged(
  prev: PlacementProblem,
  next: PlacementProblem,
  change: Change,
  rate: number,
  gamma: number,
  sharedRate = 0,
): { compiled: Compiled; from: Compiled | null } {
  const from = change.sameGraph && next.classes.length > 0 ? recall(prev, rate, gamma, sharedRate) : null;
  const compiled = from ? recompile(from, next, change) : compile(next, rate, gamma, sharedRate);
  remember(compiled);
  return { compiled, from };
}
