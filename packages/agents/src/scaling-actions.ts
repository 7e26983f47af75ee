import type { Cluster } from '@stitch/runtime';
import { replicasOf, type ScalingEvent } from './autoscaler.js';
import type { Deployment, MigrationEvent, MovePhases } from './deployment.js';
import { type NodeClass, type OpReplica, type PlacedOp, replicaActorId } from './placement.js';
import { migrationEvent, recordAfterClassMove, tenth } from './plan-changes.js';
import type { RetiringReplicas } from './retiring-replicas.js';
import { inSpan } from './tracing.js';

/** What the control loop's changes need of the coordinator that runs them. */
export interface ScalingHost {
  cluster: Cluster;
  /** The deployment's entry, whose record a change replaces. */
  deployment(name: string): { record: Deployment } | undefined;
  leading(): boolean;
  /** Runs `fn` in the coordinator's serial queue (re-plans, moves and changes one at a time). */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  configure(d: Deployment, opId: string, actorId?: string): Promise<number>;
  save(d: Deployment): Promise<void>;
  move(d: Deployment, opId: string, from: string): Promise<MovePhases>;
  /** A move between classes done: kept and counted with the re-plans' migrations. */
  migrated(ev: MigrationEvent): void;
  counters: { replicasAdded: number; movesFailed: number };
  retiring: RetiringReplicas;
  /** Appends to an event list, dropping the oldest past the coordinator's bound. */
  keep<T>(list: T[], ev: T): void;
  log(line: string): void;
}

/**
 * The control loop's changes to a deployment (see Autoscaler): replicas out and in, and moves of an
 * op between classes. Each runs in the coordinator's serial queue while it leads, saves the record,
 * and is kept in `events` and logged with its reason.
 */
export class ScalingActions {
  /** The most recent changes, oldest first. */
  readonly events: ScalingEvent[] = [];

  constructor(private readonly host: ScalingHost) {}

  /**
   * Adds a replica of op `opId` on each of `nodes` (spawned and configured before callers see it in
   * the record). A replica that fails to start is left out and logged.
   */
  scaleOut(name: string, opId: string, nodes: string[], reason: string): Promise<void> {
    return this.#change(name, opId, 'out', reason, async (d, op, t0) => {
      const taken = new Set(replicasOf(op).map((r) => r.actorId));
      const ids = nodes.map(() => {
        let k = 1;
        while (taken.has(replicaActorId(op.actorId, k))) k++;
        const id = replicaActorId(op.actorId, k);
        taken.add(id);
        return id;
      });
      const { cluster } = this.host;
      const started = await Promise.allSettled(
        nodes.map(async (node, i) => {
          const ref = { type: op.actorType, id: ids[i]! };
          await cluster.spawn(op.actorType, { id: ref.id, node });
          await this.host.configure(d.record, opId, ref.id).catch(async (err) => {
            await cluster.stop(ref).catch(() => undefined);
            throw err;
          });
          return { actorId: ref.id, node };
        }),
      );
      const added = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      for (const r of started)
        if (r.status === 'rejected')
          this.host.log(`replica of ${name}/${opId} not started: ${String(r.reason)}`);
      if (added.length === 0) return;
      const from = replicasOf(op).length;
      await this.#commitReplicas(d, opId, [...(op.replicas ?? []), ...added]);
      this.host.counters.replicasAdded += added.length;
      this.#record(
        { deployment: name, opId, kind: 'scale-out', classId: op.classId, from, to: from + added.length },
        added.map((r) => r.node),
        reason,
        t0,
      );
    });
  }

  /** Removes the `count` newest replicas of op `opId` from the record; they stop once callers had time to see it. */
  scaleIn(name: string, opId: string, count: number, reason: string): Promise<void> {
    return this.#change(name, opId, 'in', reason, async (d, op, t0) => {
      const had = op.replicas ?? [];
      const keep = had.slice(0, Math.max(0, had.length - count));
      const removed = had.slice(keep.length);
      if (removed.length === 0) return;
      await this.#commitReplicas(d, opId, keep);
      this.host.retiring.retireLater(removed.map((replica) => ({ type: op.actorType, replica })));
      const from = had.length + 1;
      this.#record(
        { deployment: name, opId, kind: 'scale-in', classId: op.classId, from, to: from - removed.length },
        removed.map((r) => r.node),
        reason,
        t0,
      );
    });
  }

  /**
   * Moves op `opId` (one activation, no replicas) live to `node`, of another class: the record names
   * the op's new class, node and estimate (the plan's, scaled as for its old class) before the move,
   * and is saved once the op answers there; a failed move leaves both.
   */
  moveToClass(name: string, opId: string, node: NodeClass, reason: string): Promise<void> {
    return this.#change(name, opId, 'move', reason, async (d, op, t0) => {
      if ((op.replicas?.length ?? 0) > 0 || op.classId === node.classId) return;
      const old = d.record;
      const next = recordAfterClassMove(old, op, node);
      d.record = next;
      let phases: MovePhases;
      try {
        phases = await this.host.move(next, opId, op.node);
      } catch (err) {
        d.record = old;
        this.host.counters.movesFailed++;
        this.host.log(
          `move of ${name}/${opId} to ${node.nodeId} (${node.classId}) failed: ${(err as Error).message}`,
        );
        return;
      }
      await this.host.save(next);
      const moved = next.ops.find((o) => o.id === opId)!;
      this.host.migrated(
        migrationEvent(name, reason, [{ op: moved, was: op, from: op.node, phases }], performance.now() - t0),
      );
      this.#record(
        {
          deployment: name,
          opId,
          kind: 'move',
          classId: op.classId,
          toClassId: node.classId,
          from: 1,
          to: 1,
        },
        [node.nodeId],
        reason,
        t0,
      );
    });
  }

  /** One change of op `opId`: a span, in the coordinator's serial queue, only while it leads. */
  #change(
    name: string,
    opId: string,
    scale: 'out' | 'in' | 'move',
    reason: string,
    change: (d: { record: Deployment }, op: PlacedOp, t0: number) => Promise<void>,
  ): Promise<void> {
    const attributes = {
      'stitch.deployment': name,
      'stitch.op': opId,
      'stitch.scale': scale,
      'stitch.reason': reason,
    };
    return inSpan('coordinator scale', attributes, () =>
      this.host.serial(async () => {
        const d = this.host.deployment(name);
        const op = d?.record.ops.find((o) => o.id === opId);
        if (!d || !op || !this.host.leading()) return;
        await change(d, op, performance.now());
      }),
    );
  }

  async #commitReplicas(d: { record: Deployment }, opId: string, replicas: OpReplica[]): Promise<void> {
    const next: Deployment = {
      ...d.record,
      version: d.record.version + 1,
      ops: d.record.ops.map((o) => {
        if (o.id !== opId) return o;
        const { replicas: _had, ...rest } = o;
        return replicas.length > 0 ? { ...rest, replicas } : rest;
      }),
    };
    d.record = next;
    await this.host.save(next);
  }

  #record(
    change: Omit<ScalingEvent, 'nodes' | 'reason' | 'at' | 'ms'>,
    nodes: string[],
    reason: string,
    t0: number,
  ): void {
    const ev: ScalingEvent = { ...change, nodes, reason, at: Date.now(), ms: tenth(performance.now() - t0) };
    this.host.keep(this.events, ev);
    this.host.log(
      ev.kind === 'move'
        ? `move ${ev.deployment}/${ev.opId} ${ev.classId}→${ev.toClassId} to ${nodes.join(', ')} in ${ev.ms} ms: ${reason}`
        : `${ev.kind} ${ev.deployment}/${ev.opId} (${ev.classId}) ${ev.from}→${ev.to} replica(s) on ${nodes.join(', ')} in ${ev.ms} ms: ${reason}`,
    );
  }
}
