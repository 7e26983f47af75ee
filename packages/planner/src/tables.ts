import type { Change } from './change.js';
import { type Compiled, rowViews } from './problem.js';
import { remapped } from './recompile.js';

// The tables the local search prices moves by, kept per compiled problem so that an incremental
// re-plan takes the previous plan's rows for every op whose own rows did not change.

/**
 * What the local search prices classes by. `own[i][k]`: task i's coefficient on class k plus its
 * own side of every incident edge's price (and γ at its own link's transfer time), as if every edge
 * crossed. Moving i to a class none of its neighbours sits on then costs exactly own[i][k] + (the
 * neighbours' side of i's edges) − (what i costs now) without γ, and at least that with γ: O(1) per
 * class. `prefs[i]`: the classes that can run i; `least[i]`: the least of own[i] over them (what a
 * move to a class no neighbour sits on costs at least). None is changed once made.
 */
export interface MoveTables {
  own: Float64Array[];
  prefs: Int32Array[];
  least: Float64Array;
}

/** The least of `row` over `ks` (Infinity when there are none). */
function leastOf(row: Float64Array, ks: Int32Array): number {
  let least = Infinity;
  for (let h = 0; h < ks.length; h++) if (row[ks[h]!]! < least) least = row[ks[h]!]!;
  return least;
}

/**
 * Makes the classes that can run a task (in index order), views of one buffer for `count` tasks: a
 * small typed array of its own would be an allocation off the heap per task.
 */
function prefsMaker(c: Compiled, count: number): (i: number) => Int32Array {
  const buffer = new Int32Array(count * c.m);
  let at = 0;
  return (i) => {
    const from = at;
    const coef = c.coef[i]!;
    for (let k = 0; k < c.m; k++) if (Number.isFinite(coef[k]!)) buffer[at++] = k;
    return buffer.subarray(from, at);
  };
}

/** The tables for every task. Without priced crossings own is the coefficient itself. */
function moveTables(c: Compiled): MoveTables {
  let own = c.coef;
  if (c.priced) {
    own = rowViews(c.n, c.m);
    for (let i = 0; i < c.n; i++) own[i]!.set(c.coef[i]!);
    const { m, tau } = c;
    c.edges.forEach(({ u, v }, e) => {
      const ru = own[u]!;
      const rv = own[v]!;
      const send = c.send[e]!;
      const recv = c.recv[e]!;
      for (let k = 0; k < m; k++) {
        const g = c.gamma * tau[e * m + k]!;
        ru[k]! += send[k]! + g;
        rv[k]! += recv[k]! + g;
      }
    });
  }
  const prefsOf = prefsMaker(c, c.n);
  const prefs = c.coef.map((_, i) => prefsOf(i));
  const least = Float64Array.from(prefs, (ks, i) => leastOf(own[i]!, ks));
  return { own, prefs, least };
}

/**
 * Task i's own row with priced crossings, written into `row`: its edges added in the order
 * moveTables adds them (the same sums, bit for bit).
 */
function ownRow(c: Compiled, i: number, row: Float64Array): void {
  row.set(c.coef[i]!);
  const pred = c.predEdges[i]!;
  const succ = c.succEdges[i]!;
  for (let p = 0, s = 0; p < pred.length || s < succ.length; ) {
    const incoming = s >= succ.length || (p < pred.length && pred[p]! < succ[s]!);
    const e = incoming ? pred[p++]! : succ[s++]!;
    const side = (incoming ? c.recv : c.send)[e]!;
    for (let k = 0; k < c.m; k++) row[k]! += side[k]! + c.gamma * c.tau[e * c.m + k]!;
  }
}

const tables = new WeakMap<Compiled, MoveTables>();

/** The move tables of c, made once per compiled problem. */
export function tablesOf(c: Compiled): MoveTables {
  let t = tables.get(c);
  if (!t) {
    t = moveTables(c);
    tables.set(c, t);
  }
  return t;
}

/**
 * The move tables of c, compiled from `before` by recompile with `change`, taken from those of
 * `before` where it has them: a task's own row reads only its own rows (its coefficients, and the
 * prices on its side of its edges, which are charged by its own times and devices), so a task
 * whose rows did not change keeps its row (and its classes), shared when the classes are the same
 * and without the gone classes' columns otherwise. Made (and kept) for every task otherwise.
 */
export function tablesAfter(c: Compiled, before: Compiled | null, change: Change): MoveTables {
  const prev = before && tables.get(before);
  if (!prev || before.priced !== c.priced) return tablesOf(c);
  const { fromClass, rowsChanged } = change;
  const sameClasses = c.m === before.m && fromClass.every((pj, j) => pj === j);
  // Without priced crossings own is the coefficient itself; with them, with the same classes only
  // the changed rows are new, else every row is.
  let changed = 0;
  for (let i = 0; i < c.n; i++) changed += rowsChanged[i]!;
  const fresh = sameClasses ? changed : c.n;
  const rows = rowViews(c.priced ? fresh : 0, c.m);
  const prefsOf = prefsMaker(c, fresh);
  const own: Float64Array[] = c.priced ? new Array(c.n) : c.coef;
  const prefs: Int32Array[] = new Array(c.n);
  const least = new Float64Array(c.n);
  for (let i = 0, h = 0; i < c.n; i++) {
    const keep = sameClasses && !rowsChanged[i];
    prefs[i] = keep ? prev.prefs[i]! : prefsOf(i);
    if (c.priced) {
      if (keep) own[i] = prev.own[i]!;
      else {
        own[i] = rows[h++]!;
        if (rowsChanged[i]) ownRow(c, i, own[i]!);
        else remapped(prev.own[i]!, change, own[i]!);
      }
    }
    least[i] = keep ? prev.least[i]! : leastOf(own[i]!, prefs[i]!);
  }
  const t = { own, prefs, least };
  tables.set(c, t);
  return t;
}
