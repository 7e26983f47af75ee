import { AlreadyActive, NoNodeAvailable, NoResponders, Timeout } from '../errors.js';
import type { CapabilityRecord } from '../node/capabilities.js';
import type { Node } from '../node/node.js';
import type { Directory, Location } from './directory.js';
import type { Names } from './names.js';

/**
 * Chooses the node that activates an actor of `type` among the live nodes' capability records;
 * undefined when none can. Passed as `connectCluster({ activationPlacement })`.
 */
export type ActivationPlacement = (type: string, nodes: readonly CapabilityRecord[]) => string | undefined;

/** The default placement: the healthy node registering the type with the fewest actors and queued messages. */
export const leastLoadedNode: ActivationPlacement = (type, nodes) => {
  let best: CapabilityRecord | undefined;
  for (const n of nodes) {
    if (!n.healthy || !n.actorTypes.includes(type)) continue;
    if (!best || load(n) < load(best)) best = n;
  }
  return best?.nodeId;
};

function load(n: CapabilityRecord): number {
  return n.load.actors + n.load.queued;
}

/** Nodes tried for one activation before giving up (each failed try means that node just went away). */
const ACTIVATION_TRIES = 3;
const ACTIVATION_TIMEOUT_MS = 10_000;
/**
 * How long the last live nodes read stand in when the records cannot be read (or show none live):
 * on a cluster the nodes bucket is a Raft group, leaderless for the 4-9 s of an election after its
 * leader's server is lost, and heartbeats that could not be written meanwhile make every record
 * look stale for a moment after. A node that is really gone answers no-responders, and the next is
 * tried.
 */
const LAST_KNOWN_NODES_MS = 30_000;
/**
 * A node that did not answer an activation in time is tried after the others for this long: behind
 * a partition its subscriptions still look live from the other servers for seconds (until their
 * routes to its server time out), and every activation sent there waits out its timeout.
 */
const SUSPECT_MS = 30_000;
/** Recent placements remembered at most (a burst beyond this counts its last ones). */
const MAX_PLACED = 10_000;

/** A node's capability record, and how long ago its heartbeat wrote it. */
export interface NodeRecord {
  record: CapabilityRecord;
  ageMs: number;
}

export interface ActivatorDeps {
  names: Names;
  directory: Directory;
  placement: ActivationPlacement;
  nodes(): Promise<NodeRecord[]>;
  /**
   * Records younger than this are fresh (their node's heartbeat lands); older ones, still within the
   * dead window, are tried after the fresh ones: a node cut off from the cluster stops writing first.
   */
  freshMs: number;
  /** Epoch ms (the cluster's clock). */
  now(): number;
  /** How many times the connection has reconnected (to another server, or the same one). */
  reconnects(): number;
  localNode(): Node | undefined;
  request(subject: string, msg: unknown, timeoutMs: number, target: string): Promise<unknown>;
}

/**
 * Activates actors on request of a caller: a request on the chosen node's activation subject, where
 * that node claims the directory entry. Concurrent activations of one actor from this process share
 * one request; racing processes are decided by the directory claim, and the loser's AlreadyActive
 * means the actor is active, which is all a caller needs.
 */
export class Activator {
  readonly #deps: ActivatorDeps;
  readonly #inFlight = new Map<string, Promise<Location | undefined>>();
  /** The last non-empty list of live nodes read, and when. */
  #lastKnown: { at: number; nodes: NodeRecord[] } | undefined;
  /** Nodes whose activation timed out, until when they are tried last. */
  readonly #suspects = new Map<string, number>();
  /** Activations this process sent lately, oldest first: where, and when. */
  readonly #placed: { node: string; at: number }[] = [];

  constructor(deps: ActivatorDeps) {
    this.#deps = deps;
  }

  /**
   * Makes sure `type`/`id` is active somewhere, activating it where the placement says when it is not;
   * an activation that another caller won counts as done.
   */
  activate(type: string, id: string): Promise<Location | undefined> {
    const key = this.#deps.names.key(type, id);
    const running = this.#inFlight.get(key);
    if (running) return running;
    const tracked = this.#activate(type, id, key, undefined)
      .catch((err) => {
        if (err instanceof AlreadyActive) return this.#deps.directory.locate(key);
        throw err;
      })
      .finally(() => {
        if (this.#inFlight.get(key) === tracked) this.#inFlight.delete(key);
      });
    this.#inFlight.set(key, tracked);
    return tracked;
  }

  /** Activates `type`/`id` on `node` (or where the placement says); AlreadyActive when it runs elsewhere. */
  spawn(type: string, id: string, node: string | undefined): Promise<Location> {
    return this.#activate(type, id, this.#deps.names.key(type, id), node);
  }

  async #activate(type: string, id: string, key: string, node: string | undefined): Promise<Location> {
    const { directory, names } = this.#deps;
    const tried = new Set<string>();
    for (let attempt = 0; attempt < ACTIVATION_TRIES; attempt++) {
      const target = node ?? (await this.#choose(type, tried));
      tried.add(target);
      try {
        const local = this.#deps.localNode();
        const where =
          local && local.id === target
            ? { node: target, epoch: (await local.spawn(type, id)).claim.epoch }
            : ((await this.#deps.request(
                names.activate(target),
                { type, id },
                ACTIVATION_TIMEOUT_MS,
                `node ${target}`,
              )) as Location);
        // Read your own write: locate() right after this sees the activation, not a trailing watch event.
        directory.remember(key, where);
        return where;
      } catch (err) {
        const gone = err instanceof NoResponders && !err.remote;
        // Silent: cut off, or too busy. Another node may activate it; if this one did after all, the
        // directory's compare-and-set makes the other's claim find it (AlreadyActive).
        const silent = err instanceof Timeout && !err.remote;
        if (silent) this.#suspects.set(target, this.#deps.now() + SUSPECT_MS);
        if ((!gone && !silent) || node !== undefined) throw err;
        if (silent && attempt === ACTIVATION_TRIES - 1) throw err;
      }
    }
    throw new NoNodeAvailable(`no node could activate actor ${key} (tried ${[...tried].join(', ')})`);
  }

  /**
   * The records with the activations this process placed on each node since it wrote its record
   * added to its actor count: a burst of activations reads the same records, and would otherwise put
   * every actor on the node that was least loaded before it.
   */
  #withRecentPlacements(nodes: NodeRecord[], now: number): NodeRecord[] {
    const oldest = now - LAST_KNOWN_NODES_MS;
    let drop = 0;
    while (drop < this.#placed.length && this.#placed[drop]!.at < oldest) drop++;
    this.#placed.splice(0, Math.max(drop, this.#placed.length - MAX_PLACED));
    if (this.#placed.length === 0) return nodes;
    return nodes.map((n) => {
      const written = now - n.ageMs;
      let since = 0;
      for (const p of this.#placed) if (p.node === n.record.nodeId && p.at >= written) since++;
      if (since === 0) return n;
      const load = { ...n.record.load, actors: n.record.load.actors + since };
      return { record: { ...n.record, load }, ageMs: n.ageMs };
    });
  }

  /** The live nodes' records, or the last ones read while they cannot be read (LAST_KNOWN_NODES_MS). */
  async #liveNodes(): Promise<NodeRecord[]> {
    let read: NodeRecord[] | undefined;
    let error: unknown;
    for (let tries = 0; tries < 2 && !read; tries++) {
      const reconnects = this.#deps.reconnects();
      try {
        read = await this.#deps.nodes();
      } catch (err) {
        error = err;
        // Failed on a connection that has since moved to another server (its own was cut off): read
        // again there, rather than place on what was read before the cut.
        if (this.#deps.reconnects() === reconnects) break;
      }
    }
    const now = this.#deps.now();
    if (read && read.length > 0) {
      this.#lastKnown = { at: now, nodes: read };
      return read;
    }
    const last = this.#lastKnown;
    // Aged by the time since: none of them is fresh any more than its heartbeat is.
    if (last && now - last.at <= LAST_KNOWN_NODES_MS)
      return last.nodes.map((n) => ({ record: n.record, ageMs: n.ageMs + (now - last.at) }));
    if (read) return read;
    throw error;
  }

  /**
   * Where the placement puts `type` among the nodes not tried yet: among those with a fresh record
   * that did not stay silent lately and do not shed load, else among them all.
   */
  async #choose(type: string, tried: Set<string>): Promise<string> {
    const now = this.#deps.now();
    const nodes = this.#withRecentPlacements(
      // A draining node refuses activations: offering it to the placement would only cost a try.
      (await this.#liveNodes()).filter((n) => !tried.has(n.record.nodeId) && !n.record.draining),
      now,
    );
    const trusted = nodes.filter(
      (n) =>
        n.ageMs <= this.#deps.freshMs &&
        n.record.shedding !== true &&
        (this.#suspects.get(n.record.nodeId) ?? 0) <= now,
    );
    for (const [id, until] of this.#suspects) if (until <= now) this.#suspects.delete(id);
    const chosen =
      this.#deps.placement(
        type,
        trusted.map((n) => n.record),
      ) ??
      this.#deps.placement(
        type,
        nodes.map((n) => n.record),
      );
    if (chosen === undefined)
      throw new NoNodeAvailable(`no live, healthy node that is not draining registers actor type "${type}"`);
    this.#placed.push({ node: chosen, at: now });
    return chosen;
  }
}
