// What the coordinator makes of node membership: join/leave/dead events (checked against the nodes
// bucket before anything moves: the subject is open to any client), drain events and the server's
// disconnect advisories (both checked by asking the node). Checks run one at a time, in arrival
// order, bounded.
import type { Cluster, MembershipEvent } from '@stitch/runtime';

/** Membership events waiting for their check against the nodes bucket; more are dropped (and counted). */
const MAX_PENDING_MEMBERSHIP = 1000;
/** A `dead`/`leave` whose node still heartbeats is checked again this often, this many times. */
const CONFIRM_RETRY_MS = 1000;
const CONFIRM_RETRIES = 10;
/** Ignored membership events are logged at most once per this many ms. */
const IGNORED_LOG_MS = 1000;

/** What the watch needs from the coordinator. */
export interface MembershipTarget {
  /** Holds the leader lease (confirmed or not yet: what it then does waits for the confirmation). */
  holdsLease(): boolean;
  stopped(): boolean;
  /** Whether the node hosts operators of a deployment. */
  hosts(nodeId: string): boolean;
  /** A node joined: every deployment may have a better plan. */
  joined(ev: MembershipEvent): void;
  /** A node is gone: the deployments with operators on it re-plan without it. */
  lost(nodeId: string, ev: MembershipEvent, cause?: string): void;
  log(line: string): void;
}

export class MembershipWatch {
  #queue: Promise<void> = Promise.resolve();
  readonly #pending = new Set<string>();
  readonly #rechecks = new Map<string, ReturnType<typeof setTimeout>>();
  #ignored = 0;
  #loggedAt = Number.NEGATIVE_INFINITY;
  #unlogged = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly t: MembershipTarget,
  ) {}

  /** Events not acted on (forged or stale, or dropped while too many awaited a check). */
  get ignored(): number {
    return this.#ignored;
  }

  stop(): void {
    for (const t of this.#rechecks.values()) clearTimeout(t);
    this.#rechecks.clear();
  }

  /**
   * Membership events arrive on a plain subject any client can publish on, so none is taken on its
   * word: a `dead` or `leave` counts only once the node's heartbeat is not current, a `join` only when
   * the node has a capability record. Events are checked one at a time, in the order they arrived.
   */
  onEvent(ev: MembershipEvent): void {
    if (!this.t.holdsLease()) return;
    // A leave or death matters only where the node hosts operators; a join can make a better plan anywhere.
    if (ev.kind !== 'join' && !this.t.hosts(ev.nodeId)) return;
    const key = `${ev.kind}:${ev.nodeId}`;
    if (this.#pending.has(key)) return;
    if (this.#pending.size >= MAX_PENDING_MEMBERSHIP) {
      this.#ignore(`membership event ${key} dropped: ${MAX_PENDING_MEMBERSHIP} events await a check`);
      return;
    }
    this.#pending.add(key);
    this.#queue = this.#queue
      .then(() => {
        this.#pending.delete(key);
        return this.#confirm(ev, 0);
      })
      .catch((err) => this.t.log(`membership event ${key} failed: ${(err as Error).message}`));
  }

  async #confirm(ev: MembershipEvent, attempt: number): Promise<void> {
    if (this.t.stopped()) return;
    if (ev.kind === 'join') {
      const known = (await this.cluster.nodes()).some((n) => n.nodeId === ev.nodeId);
      if (!known) {
        this.#ignore(`join of ${ev.nodeId} ignored: no capability record for it`);
        return;
      }
      this.t.joined(ev);
      return;
    }
    if (!this.t.hosts(ev.nodeId)) return;
    if (ev.kind === 'drain') {
      // The node stays up while its operators move off it (live): only its own word counts.
      if (await this.cluster.isNodeDraining(ev.nodeId)) this.t.lost(ev.nodeId, ev, 'is draining');
      else this.#ignore(`drain of ${ev.nodeId} ignored: the node does not say it is draining`);
      return;
    }
    if (await this.cluster.isNodeAlive(ev.nodeId)) {
      if (attempt === 0) this.#ignore(`${ev.kind} of ${ev.nodeId} ignored: its heartbeat is current`);
      // A real death can be reported a little before this process's clock agrees (another process's
      // monitor); look again a few times. One check per node and kind is pending at most.
      const key = `${ev.kind}:${ev.nodeId}`;
      if (attempt < CONFIRM_RETRIES && !this.#rechecks.has(key)) {
        const timer = setTimeout(() => {
          this.#rechecks.delete(key);
          this.#queue = this.#queue
            .then(() => this.#confirm(ev, attempt + 1))
            .catch((err) => this.t.log(`membership event ${key} failed: ${(err as Error).message}`));
        }, CONFIRM_RETRY_MS);
        timer.unref?.();
        this.#rechecks.set(key, timer);
      }
      return;
    }
    this.t.lost(ev.nodeId, ev);
  }

  /**
   * The server closed a client's connection (its disconnect advisory, see watchServerDisconnects). When
   * that client was a node hosting operators (its connection name `stitch-<cluster>-<host>-<pid>`
   * matches the node's capability record) and the node no longer answers, its operators move now,
   * without waiting for its heartbeat to expire. A node that reconnected answers, and keeps them.
   */
  disconnected(client: { name: string }): void {
    if (!this.t.holdsLease()) return;
    const prefix = `stitch-${this.cluster.name}-`;
    if (typeof client?.name !== 'string' || !client.name.startsWith(prefix)) return;
    const rest = client.name.slice(prefix.length);
    const dash = rest.lastIndexOf('-');
    const host = rest.slice(0, dash);
    const pid = Number(rest.slice(dash + 1));
    if (dash <= 0 || !Number.isSafeInteger(pid)) return;
    this.#queue = this.#queue
      .then(async () => {
        if (this.t.stopped()) return;
        const gone = (await this.cluster.nodes()).filter((r) => r.host === host && r.pid === pid);
        for (const r of gone) {
          if (!this.t.hosts(r.nodeId) || (await this.cluster.nodeAnswers(r.nodeId))) continue;
          const ev: MembershipEvent = { kind: 'dead', nodeId: r.nodeId, revision: 0, at: Date.now() };
          this.t.log(`node ${r.nodeId} disconnected (server advisory) and does not answer`);
          this.t.lost(r.nodeId, ev, 'disconnected');
        }
      })
      .catch((err) => this.t.log(`disconnect of ${client.name} failed: ${(err as Error).message}`));
  }

  /** Counts an event not acted on; logs at most once per `IGNORED_LOG_MS`, with how many were not logged. */
  #ignore(line: string): void {
    this.#ignored++;
    const now = Date.now();
    if (now - this.#loggedAt < IGNORED_LOG_MS) {
      this.#unlogged++;
      return;
    }
    const more = this.#unlogged > 0 ? ` (and ${this.#unlogged} more since the last report)` : '';
    this.#loggedAt = now;
    this.#unlogged = 0;
    this.t.log(`${line}${more}`);
  }
}
