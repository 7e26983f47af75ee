import type { Change } from './change.js';
import type { Compiled } from './problem.js';
import { remapped } from './recompile.js';

// The tables the local search prices moves by, kept per compiled problem so that an incremental
// re-plan takes the previous plan's rows for every op whose own rows did not change.

/**
 * What the local search prices classes by. `own[i][k]`: task i's coefficient on class k plus its
 * own side of every incident edge's price (and γ at its own link's transfer time), as if every edge
 * crossed. Moving i to a class none of its neighbours sits on then costs exactly own[i][k] + (the
 * neighbours' side of i's edges) − (what i costs now) without γ, and at least that with γ: O(1) per
 * class. `prefs[i]`: the classes that can run i. Neither is changed once made.
 */
export interface MoveTables {
  own: number[][];
  prefs: Int32Array[];
}

/** The classes that can run task i, in index order. */
function prefsOf(c: Compiled, i: number, ks: Int32Array): Int32Array {
  let n = 0;
  const coef = c.coef[i]!;
  for (let k = 0; k < c.m; k++) if (Number.isFinite(coef[k]!)) ks[n++] = k;
  return ks.slice(0, n);
}

/** The tables for every task. Without priced crossings own is the coefficient itself. */
function moveTables(c: Compiled): MoveTables {
  const own = c.priced ? c.coef.map((row) => [...row]) : c.coef;
  if (c.priced) {
    for (const { u, v, send, recv, tau } of c.edges) {
      const ru = own[u]!;
      const rv = own[v]!;
      for (let k = 0; k < c.m; k++) {
        const g = c.gamma * tau[k]!;
        ru[k]! += send[k]! + g;
        rv[k]! += recv[k]! + g;
      }
    }
  }
  const ks = new Int32Array(c.m);
  const prefs = c.coef.map((_, i) => prefsOf(c, i, ks));
  return { own, prefs };
}

/** Task i's own row, its edges added in the order moveTables adds them (the same sums, bit for bit). */
function ownRow(c: Compiled, i: number): number[] {
  const row = [...c.coef[i]!];
  if (!c.priced) return row;
  const pred = c.predEdges[i]!;
  const succ = c.succEdges[i]!;
  for (let p = 0, s = 0; p < pred.length || s < succ.length; ) {
    const incoming = s >= succ.length || (p < pred.length && pred[p]! < succ[s]!);
    const { send, recv, tau } = c.edges[incoming ? pred[p++]! : succ[s++]!]!;
    const side = incoming ? recv : send;
    for (let k = 0; k < c.m; k++) row[k]! += side[k]! + c.gamma * tau[k]!;
  }
  return row;
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
  const ks = new Int32Array(c.m);
  const own: number[][] = new Array(c.n);
  const prefs: Int32Array[] = new Array(c.n);
  for (let i = 0; i < c.n; i++) {
    if (rowsChanged[i]) {
      own[i] = c.priced ? ownRow(c, i) : c.coef[i]!;
      prefs[i] = prefsOf(c, i, ks);
    } else if (sameClasses) {
      own[i] = c.priced ? prev.own[i]! : c.coef[i]!;
      prefs[i] = prev.prefs[i]!;
    } else {
      own[i] = c.priced ? remapped(prev.own[i]!, fromClass, new Array<number>(c.m)) : c.coef[i]!;
      prefs[i] = prefsOf(c, i, ks);
    }
  }
  const t = { own, prefs };
  tables.set(c, t);
  return t;
}
