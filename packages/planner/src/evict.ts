import { deltaCost, fitsWindow } from './descent.js';
import { type Compiled, transferCost } from './problem.js';
import { LiveSchedule } from './schedule.js';

// Eviction of ops from classes whose device count no longer holds them, for the incremental
// re-plan: the ops that cost least to move leave, each to the cheapest class that keeps every path
// through it within the SLA.

const EPS = 1e-9;

/** Where an op on an over-full class goes, and what that costs; `fits` when its window holds. */
interface Move {
  to: number;
  delta: number;
  fits: boolean;
}

/**
 * The cheapest move of task i off its class k that fits its window against the live schedule, or
 * (none fitting) the one that adds the least time. Classes a neighbour sits on are priced exactly;
 * the others by the task's own row (see MoveTables) — exact without γ, a lower bound with it, so
 * only a class that could beat the best so far is priced exactly and checked against the window.
 */
function cheapestMove(
  c: Compiled,
  assign: Int32Array,
  used: Float64Array,
  live: LiveSchedule,
  own: Float64Array[],
  slaMs: number,
  i: number,
  stamp: Int32Array,
  tick: number,
): Move {
  const k = assign[i]!;
  const time = c.p.timeMs[i]!;
  const units = c.units[i]!;
  const coefK = c.coef[i]![k]!;
  // What the edges cost now, less the neighbours' side of a crossing: added to own[i][j], the
  // cost of i on a class no neighbour sits on.
  let offset = 0;
  for (const e of c.predEdges[i]!) {
    const b = assign[c.edges[e]!.u]!;
    stamp[b] = tick;
    offset += c.send[e]![b]! - transferCost(c, e, b, k);
  }
  for (const e of c.succEdges[i]!) {
    const b = assign[c.edges[e]!.v]!;
    stamp[b] = tick;
    offset += c.recv[e]![b]! - transferCost(c, e, k, b);
  }
  let from = 0;
  for (const e of c.predEdges[i]!) from = Math.max(from, live.ef[c.edges[e]!.u]!);
  let until = slaMs;
  for (const e of c.succEdges[i]!) until = Math.min(until, live.ls[c.edges[e]!.v]!);
  // Transfers left out: a class slower than this cannot fit.
  const room = until - from + EPS;
  const best: Move = { to: -1, delta: Infinity, fits: false };
  let fastest = -1;
  for (let j = 0; j < c.m; j++) {
    if (j === k || !(c.coef[i]![j]! < Infinity) || used[j]! + units[j]! > c.cap[j]!) continue;
    if (fastest < 0 || time[j]! < time[fastest]!) fastest = j;
    if (time[j]! > room) continue;
    let d: number;
    if (stamp[j] === tick) d = deltaCost(c, assign, i, j);
    else {
      d = own[i]![j]! - coefK + offset;
      if (!(d < best.delta)) continue;
      if (c.gamma > 0) d = deltaCost(c, assign, i, j);
    }
    if (d < best.delta && fitsWindow(c, assign, live.ef, live.ls, i, j, slaMs)) {
      best.to = j;
      best.delta = d;
      best.fits = true;
    }
  }
  if (best.fits || fastest < 0) return best;
  return { to: fastest, delta: time[fastest]! - time[k]!, fits: false };
}

/**
 * Moves ops off each class whose count no longer holds them, marking each moved op in `dirty`. Ops
 * leave in order of their cheapest move within the SLA, priced against the current schedule (kept
 * live), and recomputed when their turn comes; an op with no such move takes the class that adds
 * the least time (the critical-path repair runs next). With priced crossings an evicted op's
 * colocated neighbours follow it while that is their own cheapest move and costs no more than the
 * next op in line: evicting a colocated chain together is cheaper than one by one into different
 * classes. `own`: the own rows of MoveTables. False when a class
 * cannot be brought within its count.
 */
export function evict(
  c: Compiled,
  assign: Int32Array,
  slaMs: number,
  own: Float64Array[],
  dirty: Uint8Array,
): boolean {
  const used = new Float64Array(c.m);
  for (let i = 0; i < c.n; i++) used[assign[i]!]! += c.units[i]![assign[i]!]!;
  const stamp = new Int32Array(c.m);
  let tick = 0;
  for (let k = 0; k < c.m; k++) {
    if (used[k]! <= c.cap[k]!) continue;
    const live = new LiveSchedule(c, assign, slaMs);
    const moveOf = (i: number) => cheapestMove(c, assign, used, live, own, slaMs, i, stamp, ++tick);
    const queue: { i: number; delta: number }[] = [];
    for (let i = 0; i < c.n; i++) {
      if (assign[i] !== k) continue;
      const mv = moveOf(i);
      queue.push({ i, delta: mv.fits ? mv.delta : Infinity });
    }
    queue.sort((x, y) => x.delta - y.delta || x.i - y.i);
    const move = (i: number, to: number) => {
      used[k]! -= c.units[i]![k]!;
      used[to]! += c.units[i]![to]!;
      assign[i] = to;
      dirty[i] = 1;
      live.update([i]);
    };
    for (let h = 0; h < queue.length && used[k]! > c.cap[k]!; h++) {
      const i = queue[h]!.i;
      if (assign[i] !== k) continue;
      const mv = moveOf(i);
      if (mv.to < 0) continue;
      move(i, mv.to);
      if (!c.priced) continue;
      // The neighbours still on k follow while it is their cheapest move and no dearer than the next in line.
      const next = queue[h + 1]?.delta ?? Infinity;
      const stack = [i];
      while (stack.length > 0 && used[k]! > c.cap[k]!) {
        const x = stack.pop()!;
        for (const e of [...c.predEdges[x]!, ...c.succEdges[x]!]) {
          const { u, v } = c.edges[e]!;
          const w = u === x ? v : u;
          if (assign[w] !== k || used[k]! <= c.cap[k]!) continue;
          const follow = moveOf(w);
          if (follow.to !== mv.to || !follow.fits || follow.delta > next) continue;
          move(w, mv.to);
          stack.push(w);
        }
      }
    }
    if (used[k]! > c.cap[k]!) return false;
  }
  return true;
}
