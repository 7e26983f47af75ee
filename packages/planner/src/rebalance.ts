// The rebalancing policy: a pure function of what the operators report, the free capacity per device
// class and a clock, returning the changes to make and the state to pass to the next round. The live
// coordinator and the fleet simulator run this same code. It scales an operator's replicas toward a
// target utilisation, with hysteresis (scale out above one threshold, in below a lower one), a cooldown
// per operator (long before a scale-in, short before a scale-out), a cap on changes per round, pinned
// operators left alone, and a reason for each change. Given the other classes an operator could run
// on, it also moves a single-replica operator: to another class with room when its own is full, and
// back to a cheaper one when its load has fallen (both within the operator's latency budget).
import { PlanError, PlanErrorCode } from './errors.js';

/** One operator as measured over the last window. */
export interface OperatorObservation {
  opId: string;
  classId: string;
  replicas: number;
  /**
   * Replicas' worth of the op that took what reached them, ≤ replicas: a replica on a node that sheds
   * load refuses messages (callers trade them to another replica) and counts only for the share it
   * took. What the op lost, replicas − servingReplicas rounded to whole replicas (a half up), counts
   * as replicas that do not serve: the policy adds one for each (on a node with room) and keeps them
   * out of the utilisation. @default replicas
   */
  servingReplicas?: number;
  /** Requests per second that reached the operator. */
  arrivalPerS: number;
  /** Mean measured service time of one request on one replica, ms. */
  serviceMs: number;
  /** Requests waiting in the replicas' mailboxes now. */
  queueDepth: number;
  /**
   * Mean time a request waited for a slot of the op's device, ms: other ops keep the device busy. A
   * deep queue with waits longer than the service itself is a full device, which a class with room
   * helps (not more replicas beside the ops that fill it).
   */
  slotWaitMs?: number;
  /** Never changed by the policy (placement pinned by the graph or the user). */
  pinned?: boolean;
  /** Price of one device of the op's own class per hour (without it the op is never moved to a cheaper class). */
  usdPerHour?: number;
  /** Other classes the op could run on; with them the policy may move it (a single replica only). */
  alternatives?: readonly ClassOption[];
  /** The longest service time the op may have on another class and the graph keep its SLA, ms. */
  budgetMs?: number;
}

/** A class an operator could move to, as the cost model estimates it there. */
export interface ClassOption {
  classId: string;
  /** Estimated service time of one request there, ms. */
  serviceMs: number;
  /** Price of one device of the class per hour. */
  usdPerHour: number;
  /**
   * What the op's edges to its neighbours (where they run) would take there, less what they take
   * now, ms: negative when the move brings the op next to them. Counted against the budget. @default 0
   */
  transferMs?: number;
}

/**
 * What `bytes` take between a device of a class with a `aGBps` link and one with `bGBps`: the
 * slower side's time, as a plan prices an edge that leaves a class (ms). A caller adds nothing for
 * two ops on the same class.
 */
export function crossingMs(bytes: number, aGBps: number, bGBps: number): number {
  return (bytes / (Math.min(aGBps, bGBps) * 1e9)) * 1e3;
}

export interface RebalanceConfig {
  /** Replicas are sized for this utilisation. @default 0.7 */
  targetUtilisation?: number;
  /** Scale out when utilisation (arrival × service ÷ replicas) is above this, or the queue is deep. @default 0.85 */
  scaleOutAbove?: number;
  /** Scale in when utilisation is below this. @default 0.4 */
  scaleInBelow?: number;
  /** Queued requests per replica that count as overload while the op is at least `scaleInBelow` busy. @default 4 */
  queuePerReplica?: number;
  /** No scale-in within this many ms of the operator's last scale-out (the hysteresis in time). @default 10 000 */
  cooldownMs?: number;
  /**
   * No change within this many ms of the operator's last one: it lets that change show in the
   * observations (a spike does not wait out the long cooldown, and load that falls is followed down
   * in steps this far apart). @default 2 000
   */
  scaleOutCooldownMs?: number;
  /** A scale-out sizes the replicas to clear the queued requests within this many ms as well. @default 5 000 */
  drainMs?: number;
  /** Changes per round at most (the most urgent first). @default 2 */
  maxChangesPerRound?: number;
  /** @default 16 */
  maxReplicas?: number;
  /**
   * Moves an idle operator to another class only when a request there costs at most this fraction of
   * what it costs where it runs (service time × device price): the margin keeps it from moving back
   * and forth between near-equal classes. @default 0.8
   */
  shedBelow?: number;
}

export interface RebalanceAction {
  /** `move`: the op's one replica goes from `classId` to `toClassId` (from = to = 1). */
  kind: 'scale-out' | 'scale-in' | 'move';
  opId: string;
  classId: string;
  toClassId?: string;
  /** A move's share of one device's slots at its destination (its load at the target utilisation). */
  slots?: number;
  from: number;
  to: number;
  reason: string;
}

/** Carried from one round to the next: when each operator last changed, and last scaled out. */
export interface RebalanceState {
  changedAt: Record<string, number>;
  scaledOutAt?: Record<string, number>;
}

export interface RebalanceResult {
  actions: RebalanceAction[];
  state: RebalanceState;
}

function resolve(c: RebalanceConfig) {
  const r = {
    targetUtilisation: c.targetUtilisation ?? 0.7,
    scaleOutAbove: c.scaleOutAbove ?? 0.85,
    scaleInBelow: c.scaleInBelow ?? 0.4,
    queuePerReplica: c.queuePerReplica ?? 4,
    cooldownMs: c.cooldownMs ?? 10_000,
    scaleOutCooldownMs: c.scaleOutCooldownMs ?? 2_000,
    drainMs: c.drainMs ?? 5_000,
    maxChangesPerRound: c.maxChangesPerRound ?? 2,
    maxReplicas: c.maxReplicas ?? 16,
    shedBelow: c.shedBelow ?? 0.8,
  };
  const bad = (what: string) => new PlanError(PlanErrorCode.Input, `rebalance config: ${what}`);
  if (!(r.scaleInBelow > 0 && r.scaleInBelow < r.targetUtilisation && r.targetUtilisation < r.scaleOutAbove))
    throw bad(
      'need 0 < scaleInBelow < targetUtilisation < scaleOutAbove (the band between is the hysteresis)',
    );
  if (!(r.scaleOutAbove <= 1.5)) throw bad('scaleOutAbove above 1.5 would wait for queues to explode');
  for (const [k, v] of [
    ['queuePerReplica', r.queuePerReplica],
    ['cooldownMs', r.cooldownMs],
    ['scaleOutCooldownMs', r.scaleOutCooldownMs],
  ] as const)
    if (!(Number.isFinite(v) && v >= 0)) throw bad(`${k} must be a finite number ≥ 0`);
  if (!(Number.isFinite(r.drainMs) && r.drainMs > 0)) throw bad('drainMs must be a finite number > 0');
  if (!(r.shedBelow > 0 && r.shedBelow < 1)) throw bad('shedBelow must be between 0 and 1');
  for (const [k, v] of [
    ['maxChangesPerRound', r.maxChangesPerRound],
    ['maxReplicas', r.maxReplicas],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 1) throw bad(`${k} must be an integer ≥ 1`);
  return r;
}

function checkObservation(o: OperatorObservation): void {
  const ok =
    typeof o?.opId === 'string' &&
    typeof o.classId === 'string' &&
    Number.isSafeInteger(o.replicas) &&
    o.replicas >= 1 &&
    [o.arrivalPerS, o.serviceMs, o.queueDepth, o.slotWaitMs ?? 0, o.servingReplicas ?? 0].every(
      (x) => Number.isFinite(x) && x >= 0,
    ) &&
    (o.alternatives ?? []).every(
      (a) =>
        typeof a?.classId === 'string' &&
        [a.serviceMs, a.usdPerHour].every((x) => Number.isFinite(x) && x >= 0) &&
        Number.isFinite(a.transferMs ?? 0),
    );
  if (!ok)
    throw new PlanError(
      PlanErrorCode.Input,
      `observation ${JSON.stringify(o?.opId)}: needs opId, classId, replicas ≥ 1, finite arrivalPerS, serviceMs, queueDepth, slotWaitMs, servingReplicas ≥ 0, and alternatives with a classId, finite serviceMs, usdPerHour ≥ 0 and a finite transferMs`,
    );
}

type Candidate = RebalanceAction & { urgency: number; observed: OperatorObservation };

const pct = (x: number) => `${Math.round(x * 100)} %`;
const requestCost = (x: { serviceMs: number; usdPerHour: number }) => x.serviceMs * x.usdPerHour;

/**
 * Classes the op may move to: another class where its service and the change in its edges'
 * transfers stay within its latency budget (or no slower, without one).
 */
function movable(o: OperatorObservation): ClassOption[] {
  const budget = o.budgetMs ?? o.serviceMs;
  return (o.alternatives ?? []).filter(
    (a) => a.classId !== o.classId && a.serviceMs + (a.transferMs ?? 0) <= budget,
  );
}

/** How a move's transfers change, for its reason ('' when they do not). */
const transfers = (a: ClassOption) =>
  a.transferMs ? `, its edges ${a.transferMs > 0 ? '+' : ''}${a.transferMs.toFixed(1)} ms` : '';

/**
 * For an idle op: the class where a request costs least, if that is under `shedBelow` of what it
 * costs here and the op's load would keep it under the target utilisation there.
 */
function cheaperClass(o: OperatorObservation, c: ReturnType<typeof resolve>): ClassOption | undefined {
  if (o.usdPerHour === undefined) return undefined;
  const here = requestCost({ serviceMs: o.serviceMs, usdPerHour: o.usdPerHour });
  return movable(o)
    .filter(
      (a) =>
        requestCost(a) <= c.shedBelow * here && (o.arrivalPerS * a.serviceMs) / 1000 <= c.targetUtilisation,
    )
    .sort((a, b) => requestCost(a) - requestCost(b) || a.serviceMs - b.serviceMs)[0];
}

/**
 * For an op whose class is full: a class with a free slot, preferring one with room for every replica
 * the op's load needs there, then the cheapest request, then the fastest.
 */
function roomierClass(
  o: OperatorObservation,
  room: (classId: string) => number,
  c: ReturnType<typeof resolve>,
): ClassOption | undefined {
  const neededOn = (a: ClassOption) =>
    Math.ceil(
      ((o.arrivalPerS * a.serviceMs) / 1000 + (o.queueDepth * a.serviceMs) / c.drainMs) / c.targetUtilisation,
    );
  const fits = (a: ClassOption) => (room(a.classId) >= neededOn(a) ? 0 : 1);
  return movable(o)
    .filter((a) => room(a.classId) >= 1)
    .sort((a, b) => fits(a) - fits(b) || requestCost(a) - requestCost(b) || a.serviceMs - b.serviceMs)[0];
}

/**
 * What the control loop would change about one op, and how urgently: a scale-out when it is busy (or
 * its queue is deep while it is busy, or its requests wait for device slots), a scale-in when it is
 * idle with more replicas than it needs, a move to a cheaper class when it is idle on one; none while
 * a change of it cools down.
 */
function candidateFor(
  o: OperatorObservation,
  c: ReturnType<typeof resolve>,
  now: number,
  state: RebalanceState,
): Candidate | undefined {
  const ago = (t: number | undefined) => (t === undefined ? Number.POSITIVE_INFINITY : now - t);
  if (ago(state.changedAt[o.opId]) < c.scaleOutCooldownMs) return undefined;
  const sinceOut = ago(state.scaledOutAt?.[o.opId]);
  const load = (o.arrivalPerS * o.serviceMs) / 1000; // busy replicas needed at 100 % utilisation
  // Replicas that refused most of what reached them (their node sheds load) serve nobody: the load is
  // the serving ones', and each of those that do not is matched by one more while it stays.
  const lost = Math.round(o.replicas - Math.min(o.replicas, o.servingReplicas ?? o.replicas));
  const serving = o.replicas - lost;
  const utilisation = load / Math.max(serving, 1);
  // A backlog must drain too: the replicas that would clear the queue within drainMs count as load
  // (sizing by arrivals alone under-sizes the first scale-out of a spike, which has queued by then).
  const backlog = (o.queueDepth * o.serviceMs) / c.drainMs;
  const needed = Math.max(1, Math.min(c.maxReplicas, Math.ceil((load + backlog) / c.targetUtilisation)));
  const queued = o.queueDepth / o.replicas;
  // A deep queue counts only while the op is itself busy (above the scale-in threshold): the queue of
  // an op that is mostly idle waits on something else (its device, its inputs), which more replicas
  // of it would not fix — and scaling such an op out and back in is flapping.
  const deep = queued > c.queuePerReplica && utilisation >= c.scaleInBelow;
  const starved = queued > c.queuePerReplica && (o.slotWaitMs ?? 0) > o.serviceMs;
  // No replica serves: callers' requests fail whatever the load (with one serving, the utilisation
  // over those that serve decides, with the usual hysteresis).
  const short = serving === 0;
  const over =
    lost > 0
      ? `${serving} serving replica(s) (${lost} more refused most requests: a node shedding load)`
      : `${o.replicas} replica(s)`;
  if ((utilisation > c.scaleOutAbove || deep || starved || short) && o.replicas < c.maxReplicas) {
    const to = Math.max(needed + lost, o.replicas + 1);
    return {
      kind: 'scale-out',
      opId: o.opId,
      classId: o.classId,
      from: o.replicas,
      to: Math.min(to, c.maxReplicas),
      reason: `utilisation ${pct(utilisation)}${deep || starved ? `, ${queued.toFixed(1)} queued per replica` : ''}${starved ? `, ${o.slotWaitMs!.toFixed(0)} ms waiting for a device slot per request` : ''} over ${over}; ${needed} give ${pct(load / Math.max(needed, 1))}${backlog > 0 ? ` and drain the queue within ${c.drainMs / 1000} s` : ''}${lost > 0 ? `, ${lost} more stand in for those refusing` : ''}`,
      // An op no replica serves fails its requests: first.
      urgency: serving === 0 ? Number.MAX_VALUE : Math.max(utilisation, queued / c.queuePerReplica),
      observed: o,
    };
  }
  const idle = utilisation < c.scaleInBelow && queued === 0 && sinceOut >= c.cooldownMs;
  if (idle && o.replicas > needed + lost) {
    return {
      kind: 'scale-in',
      opId: o.opId,
      classId: o.classId,
      from: o.replicas,
      to: needed + lost,
      reason: `utilisation ${pct(utilisation)} over ${over}; ${needed} give ${pct(load / needed)}${lost > 0 ? `, beside the ${lost} refusing` : ''}`,
      urgency: -utilisation,
      observed: o,
    };
  }
  // Like a scale-in: `cooldownMs` after the last scale-out (the short cooldown after any change holds).
  const cheaper = idle && o.replicas === 1 ? cheaperClass(o, c) : undefined;
  if (!cheaper) return undefined;
  return {
    kind: 'move',
    opId: o.opId,
    classId: o.classId,
    toClassId: cheaper.classId,
    from: 1,
    to: 1,
    reason: `utilisation ${pct(utilisation)}: a request costs ${pct(requestCost(cheaper) / requestCost({ serviceMs: o.serviceMs, usdPerHour: o.usdPerHour! }))} of this on ${cheaper.classId} (${cheaper.serviceMs.toFixed(1)} ms there${transfers(cheaper)})`,
    urgency: -utilisation,
    observed: o,
  };
}

/**
 * One round of the control loop. `freeSlots[classId]`: replicas that class can still take (whole
 * free slots of its devices); a scale-out never exceeds it, nor does a move of an op whose class is
 * full. `freeShare[classId]`: the largest free share of one of its devices (slots less the busy time
 * on them; by default `freeSlots`), which a move back to a cheaper class needs for the op's load at
 * the target utilisation. What a round scales in frees slots only next round.
 */
export function rebalance(
  observations: readonly OperatorObservation[],
  freeSlots: Readonly<Record<string, number>>,
  config: RebalanceConfig,
  now: number,
  state: RebalanceState = { changedAt: {} },
  freeShare: Readonly<Record<string, number>> = freeSlots,
): RebalanceResult {
  const c = resolve(config);
  const candidates: Candidate[] = [];
  for (const o of observations) {
    checkObservation(o);
    if (o.pinned) continue;
    const cand = candidateFor(o, c, now, state);
    if (cand) candidates.push(cand);
  }
  // Scale-outs first (the most loaded first), then scale-ins, then moves to cheaper classes (the
  // least loaded first).
  const rank = { 'scale-out': 0, 'scale-in': 1, move: 2 } as const;
  candidates.sort((a, b) => rank[a.kind] - rank[b.kind] || b.urgency - a.urgency);
  const free: Record<string, number> = { ...freeSlots };
  const share: Record<string, number> = { ...freeShare };
  const room = (classId: string) => Math.max(0, Math.floor(free[classId] ?? 0));
  const actions: RebalanceAction[] = [];
  const changedAt = { ...state.changedAt };
  const scaledOutAt = { ...state.scaledOutAt };
  for (const cand of candidates) {
    if (actions.length >= c.maxChangesPerRound) break;
    const { urgency: _u, observed, ...action } = cand;
    if (action.kind === 'scale-out') {
      const to = Math.min(action.to, action.from + room(action.classId));
      if (to > action.from) {
        actions.push(
          to === action.to
            ? action
            : {
                ...action,
                to,
                reason: `${action.reason} (class ${action.classId} has room for ${to - action.from})`,
              },
        );
        free[action.classId] = room(action.classId) - (to - action.from);
      } else {
        // Its class is full: a single replica may move to a class with room.
        const target = observed.replicas === 1 ? roomierClass(observed, room, c) : undefined;
        if (!target) continue;
        actions.push({
          kind: 'move',
          opId: action.opId,
          classId: action.classId,
          toClassId: target.classId,
          slots: 1,
          from: 1,
          to: 1,
          reason: `${action.reason}; class ${action.classId} is full, ${target.classId} has room (${target.serviceMs.toFixed(1)} ms there${transfers(target)})`,
        });
        free[target.classId] = room(target.classId) - 1;
      }
      scaledOutAt[action.opId] = now;
    } else if (action.kind === 'move') {
      const to = action.toClassId!;
      const alt = observed.alternatives!.find((a) => a.classId === to)!;
      const needs = (observed.arrivalPerS * alt.serviceMs) / 1000 / c.targetUtilisation;
      if ((share[to] ?? 0) < needs) continue;
      share[to] = (share[to] ?? 0) - needs;
      actions.push({ ...action, slots: needs });
    } else actions.push(action);
    changedAt[action.opId] = now;
  }
  return { actions, state: { changedAt, scaledOutAt } };
}
