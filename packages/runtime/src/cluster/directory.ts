import type { KV, KvEntry } from '@nats-io/kv';
import { AlreadyActive } from '../errors.js';
import type { Guard } from '../guard.js';
import { decode, encode } from '../wire/codec.js';
import { TOKEN } from './names.js';

/** Where an actor lives: written with KV create / compare-and-set so one id has one live activation. */
export interface Location {
  node: string;
  epoch: number;
}

export interface Claim extends Location {
  revision: number;
}

/**
 * The actor directory (`stitch_<cluster>_directory`, key `<type>.<id>`). Lookups are served from a
 * cache that a KV watch keeps current, so a new epoch (restart elsewhere, migration) replaces the
 * cached location as soon as it is written.
 */
export class Directory {
  readonly #kv: KV;
  readonly #guard: Guard;
  readonly #cache = new Map<string, Location>();
  #watch: { stop(): void } | undefined;

  constructor(kv: KV, guard: Guard) {
    this.#kv = kv;
    this.#guard = guard;
  }

  /**
   * Follows the bucket. Anyone who may write it can put garbage there, and its history replays that to
   * every process that connects later: an entry that is not a location counts as none, and whatever
   * one entry throws is reported and skipped, never ending the watch.
   */
  async startWatch(): Promise<void> {
    const it = await this.#kv.watch({ key: '>' });
    this.#watch = it;
    void this.#guard.each('directory watch', it, (e) => {
      const loc = live(e);
      if (loc) this.remember(e.key, loc);
      else this.#cache.delete(e.key);
    });
  }

  stopWatch(): void {
    this.#watch?.stop();
  }

  /** Caches a location; an older epoch never replaces a newer one (watch events can trail a spawn reply). */
  remember(key: string, loc: Location): void {
    const cached = this.#cache.get(key);
    if (!cached || loc.epoch >= cached.epoch) this.#cache.set(key, { node: loc.node, epoch: loc.epoch });
  }

  /** Drops the cached location (its actor answered no-responders), so the next lookup reads the bucket. */
  forget(key: string): void {
    this.#cache.delete(key);
  }

  /** The cached location, if any: what this process believes without asking the server. */
  cached(key: string): Location | undefined {
    return this.#cache.get(key);
  }

  async locate(key: string): Promise<Location | undefined> {
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const e = await this.#kv.get(key);
    return live(e);
  }

  /**
   * Claims `key` for `node`. A location whose holder no longer runs the activation (`isHeld` says
   * so) is taken over with the next epoch; a live holder keeps it. Epochs only grow: after a release
   * the next one is above the released entry's revision, which no earlier epoch can exceed (each
   * epoch is one write to the key).
   */
  async claim(key: string, node: string, isHeld: (held: Location) => Promise<boolean>): Promise<Claim> {
    const e = await this.#kv.get(key);
    const held = live(e);
    if (held && (await isHeld(held))) throw new AlreadyActive(key, held.node);
    const epoch = held ? held.epoch + 1 : e ? e.revision + 1 : 1;
    try {
      const value = encode({ node, epoch });
      const revision = e ? await this.#kv.update(key, value, e.revision) : await this.#kv.create(key, value);
      return { node, epoch, revision };
    } catch {
      // Someone else claimed it between our read and our compare-and-set write.
      const now = live(await this.#kv.get(key).catch(() => null));
      throw new AlreadyActive(key, now?.node ?? 'unknown');
    }
  }

  /** The entry as stored now (read from the bucket, not the cache). */
  async current(key: string): Promise<Claim | undefined> {
    const e = await this.#kv.get(key);
    const loc = live(e);
    return loc && { ...loc, revision: e!.revision };
  }

  /**
   * Writes `claim`'s location again if the entry is still at `claim.revision`: the new revision, or
   * undefined when someone else wrote it first. A migration's source does this when the target's
   * answer to a commit is lost, so that a commit still on its way cannot succeed any more.
   */
  async rewrite(key: string, claim: Claim): Promise<number | undefined> {
    try {
      return await this.#kv.update(key, encode({ node: claim.node, epoch: claim.epoch }), claim.revision);
    } catch {
      return undefined;
    }
  }

  /**
   * A migration's commit on its target: the entry moves from the source's claim (`from`, checked by
   * compare-and-set on its revision) to `node` with the next epoch. AlreadyActive when the entry
   * changed since the source read it.
   */
  async handOver(key: string, from: { epoch: number; revision: number }, node: string): Promise<Claim> {
    const epoch = from.epoch + 1;
    try {
      const revision = await this.#kv.update(key, encode({ node, epoch }), from.revision);
      const claim = { node, epoch, revision };
      this.remember(key, claim);
      return claim;
    } catch {
      const now = live(await this.#kv.get(key).catch(() => null));
      throw new AlreadyActive(key, now?.node ?? 'unknown');
    }
  }

  /** Removes the location if this claim still holds it. */
  async release(key: string, claim: Claim): Promise<void> {
    const e = await this.#kv.get(key);
    const held = live(e);
    if (!held || held.node !== claim.node || held.epoch !== claim.epoch) return;
    await this.#kv.delete(key, { previousSeq: e!.revision }).catch(() => undefined);
  }
}

/** The location an entry holds; anything that is not a well-formed location counts as none. */
function live(e: KvEntry | null): Location | undefined {
  if (e?.operation !== 'PUT') return undefined;
  let value: unknown;
  try {
    value = decode(e.value);
  } catch {
    return undefined;
  }
  const loc = value as Partial<Location> | null;
  // A node id becomes a subject token (its control subject), so it must be one.
  if (typeof loc?.node !== 'string' || !TOKEN.test(loc.node)) return undefined;
  if (!Number.isSafeInteger(loc.epoch) || (loc.epoch as number) < 1) return undefined;
  return { node: loc.node, epoch: loc.epoch as number };
}
