// The rebalancing policy: a pure function of what the operators report, the free capacity per device
// class and a clock, returning the changes to make and the state to pass to the next round. The live
// coordinator and the fleet simulator run this same code. It scales an operator's replicas toward a
// target utilisation, with hysteresis (scale out above one threshold, in below a lower one), a cooldown
// per operator (long before a scale-in, short before a scale-out), a cap on changes per round, pinned operators left alone, and a reason for each change.
import { PlanError, PlanErrorCode } from './errors.js';

/** One operator as measured over the last window. */
export interface OperatorObservation {
  opId: string;
  classId: string;
  replicas: number;
  /** Requests per second that reached the operator. */
  arrivalPerS: number;
  /** Mean measured service time of one request on one replica, ms. */
  serviceMs: number;
  /** Requests waiting in the replicas' mailboxes now. */
  queueDepth: number;
  /** Never changed by the policy (placement pinned by the graph or the user). */
  pinned?: boolean;
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
}

export interface RebalanceAction {
  kind: 'scale-out' | 'scale-in';
  opId: string;
  classId: string;
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
    [o.arrivalPerS, o.serviceMs, o.queueDepth].every((x) => Number.isFinite(x) && x >= 0);
  if (!ok)
    throw new PlanError(
      PlanErrorCode.Input,
      `observation ${JSON.stringify(o?.opId)}: needs opId, classId, replicas ≥ 1 and finite arrivalPerS, serviceMs, queueDepth ≥ 0`,
    );
}

/**
 * One round of the control loop. `freeSlots[classId]`: replicas that class can still take (devices
 * with room); a scale-out never exceeds it, and what a round scales in frees slots only next round.
 */
export function rebalance(
  observations: readonly OperatorObservation[],
  freeSlots: Readonly<Record<string, number>>,
  config: RebalanceConfig,
  now: number,
  state: RebalanceState = { changedAt: {} },
): RebalanceResult {
  const c = resolve(config);
  const candidates: (RebalanceAction & { urgency: number })[] = [];
  for (const o of observations) {
    checkObservation(o);
    if (o.pinned) continue;
    const ago = (t: number | undefined) => (t === undefined ? Number.POSITIVE_INFINITY : now - t);
    if (ago(state.changedAt[o.opId]) < c.scaleOutCooldownMs) continue;
    const sinceOut = ago(state.scaledOutAt?.[o.opId]);
    const load = (o.arrivalPerS * o.serviceMs) / 1000; // busy replicas needed at 100 % utilisation
    const utilisation = load / o.replicas;
    // A backlog must drain too: the replicas that would clear the queue within drainMs count as load
    // (sizing by arrivals alone under-sizes the first scale-out of a spike, which has queued by then).
    const backlog = (o.queueDepth * o.serviceMs) / c.drainMs;
    const needed = Math.max(1, Math.min(c.maxReplicas, Math.ceil((load + backlog) / c.targetUtilisation)));
    const queued = o.queueDepth / o.replicas;
    const pct = (x: number) => `${Math.round(x * 100)} %`;
    // A deep queue counts only while the op is itself busy (above the scale-in threshold): the queue of
    // an op that is mostly idle waits on something else (its device, its inputs), which more replicas
    // of it would not fix — and scaling such an op out and back in is flapping.
    const deep = queued > c.queuePerReplica && utilisation >= c.scaleInBelow;
    if ((utilisation > c.scaleOutAbove || deep) && o.replicas < c.maxReplicas) {
      const to = Math.max(needed, o.replicas + 1);
      candidates.push({
        kind: 'scale-out',
        opId: o.opId,
        classId: o.classId,
        from: o.replicas,
        to: Math.min(to, c.maxReplicas),
        reason: `utilisation ${pct(utilisation)}${deep ? `, ${queued.toFixed(1)} queued per replica` : ''} over ${o.replicas} replica(s); ${needed} give ${pct(load / Math.max(needed, 1))}${backlog > 0 ? ` and drain the queue within ${c.drainMs / 1000} s` : ''}`,
        urgency: Math.max(utilisation, queued / c.queuePerReplica),
      });
    } else if (
      utilisation < c.scaleInBelow &&
      o.replicas > needed &&
      queued === 0 &&
      sinceOut >= c.cooldownMs
    ) {
      candidates.push({
        kind: 'scale-in',
        opId: o.opId,
        classId: o.classId,
        from: o.replicas,
        to: needed,
        reason: `utilisation ${pct(utilisation)} over ${o.replicas} replica(s); ${needed} give ${pct(load / needed)}`,
        urgency: -utilisation,
      });
    }
  }
  // Scale-outs first (the most loaded first), then scale-ins (the least loaded first).
  candidates.sort((a, b) => (a.kind === b.kind ? b.urgency - a.urgency : a.kind === 'scale-out' ? -1 : 1));
  const free: Record<string, number> = { ...freeSlots };
  const actions: RebalanceAction[] = [];
  const changedAt = { ...state.changedAt };
  const scaledOutAt = { ...state.scaledOutAt };
  for (const cand of candidates) {
    if (actions.length >= c.maxChangesPerRound) break;
    const { urgency: _u, ...action } = cand;
    if (action.kind === 'scale-out') {
      const room = Math.max(0, Math.floor(free[action.classId] ?? 0));
      const to = Math.min(action.to, action.from + room);
      if (to <= action.from) continue; // its class is full: a move to another class is the planner's call
      free[action.classId] = room - (to - action.from);
      actions.push(
        to === action.to
          ? action
          : { ...action, to, reason: `${action.reason} (class ${action.classId} has room for ${room})` },
      );
      scaledOutAt[action.opId] = now;
    } else actions.push(action);
    changedAt[action.opId] = now;
  }
  return { actions, state: { changedAt, scaledOutAt } };
}
