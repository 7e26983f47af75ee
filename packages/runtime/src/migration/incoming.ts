import type { Clock, Timer } from '../clock.js';
import { InvalidOptions, Overloaded, PayloadTooLarge } from '../errors.js';
import type { ForwardedMessage, HandoffRequest } from './protocol.js';

/** An actor being migrated here, prepared at `begin` (its persisted record read) and taken over at the commit. */
export interface Prepared {
  /**
   * Moves the directory entry (compare-and-set on the source's revision) and starts the activation
   * from `image`, holding its subject. `recordRevision` is the source's last write of the actor's
   * persisted record: a record read earlier at another revision is read again.
   */
  commit(
    image: Uint8Array | undefined,
    from: { epoch: number; revision: number; recordRevision: number },
  ): Promise<{ epoch: number; adopted: Adopted }>;
}

/** The target's activation after a commit: it queues forwarded messages, then what it held. */
export interface Adopted {
  forwarded(items: ForwardedMessage[]): void;
  /** Every forwarded message is queued: release what reached the target directly, in order. */
  release(): void;
}

export interface IncomingOptions {
  /** Migrations into this node at once. */
  maxConcurrent: number;
  /** Largest snapshot image accepted. */
  maxStateBytes: number;
  /** A migration that hears nothing for this long before its commit is dropped. */
  idleMs: number;
  /** After its commit, the target releases what it held this long after the source's last word. */
  releaseMs: number;
}

interface Incoming {
  type: string;
  id: string;
  image: Uint8Array;
  prepared: Prepared;
  adopted: Adopted | undefined;
  timer: Timer | undefined;
}

/**
 * Migrations into this node, by id: the snapshot image each is receiving, and after the commit the
 * activation it became. Bounded in number and bytes; one whose source went quiet is dropped.
 */
export class IncomingMigrations {
  readonly #table = new Map<string, Incoming>();

  constructor(
    private readonly options: IncomingOptions,
    private readonly clock: Clock,
    /** Checks that this node can host `type`/`id` and reads what it can before the commit. */
    private readonly prepare: (type: string, id: string) => Promise<Prepared>,
  ) {}

  get size(): number {
    return this.#table.size;
  }

  async handle(req: HandoffRequest): Promise<unknown> {
    if (req.op === 'begin') return this.#begin(req.migration, req.type, req.id);
    const inc = this.#table.get(req.migration);
    if (!inc) {
      if (req.op === 'abort') return null;
      throw new InvalidOptions(`no migration ${req.migration} in progress here (expired or never begun)`);
    }
    this.#touch(req.migration, inc);
    switch (req.op) {
      case 'state':
        if (inc.adopted) throw new InvalidOptions('state after the commit');
        this.#write(inc, req.total, req.offset, req.data);
        return null;
      case 'commit': {
        if (inc.adopted) throw new InvalidOptions('a second commit');
        if (req.part) this.#write(inc, req.total, req.part.offset, req.part.data);
        this.#resize(inc, req.total);
        const image = req.total > 0 ? inc.image.subarray(0, req.total) : undefined;
        const r = await inc.prepared.commit(image, req);
        inc.adopted = r.adopted;
        inc.image = new Uint8Array(0);
        this.#touch(req.migration, inc);
        return { epoch: r.epoch };
      }
      case 'forward':
        if (!inc.adopted) throw new InvalidOptions('forwarded messages before the commit');
        inc.adopted.forwarded(req.items);
        return null;
      case 'done':
        if (!inc.adopted) throw new InvalidOptions('done before the commit');
        inc.adopted.forwarded(req.items);
        this.#end(req.migration, inc);
        return null;
      case 'abort':
        if (inc.adopted) throw new InvalidOptions('the migration has committed; it cannot be aborted');
        this.#end(req.migration, inc);
        return null;
    }
  }

  /** Drops every migration (the node is closing); adopted activations release what they held. */
  close(): void {
    for (const [id, inc] of this.#table) this.#end(id, inc);
  }

  async #begin(migration: string, type: string, id: string): Promise<null> {
    if (this.#table.has(migration)) throw new InvalidOptions(`migration ${migration} has begun already`);
    if (this.#table.size >= this.options.maxConcurrent)
      throw new Overloaded(`this node takes ${this.options.maxConcurrent} migrations at once`);
    for (const inc of this.#table.values())
      if (inc.type === type && inc.id === id)
        throw new InvalidOptions(`${type}/${id} is already migrating here`);
    // Counted from here, so that concurrent begins cannot pass the limit while this one prepares.
    const inc = { type, id, image: new Uint8Array(0), adopted: undefined } as Incoming;
    this.#table.set(migration, inc);
    try {
      inc.prepared = await this.prepare(type, id);
    } catch (err) {
      this.#table.delete(migration);
      throw err;
    }
    this.#touch(migration, inc);
    return null;
  }

  #touch(migration: string, inc: Incoming): void {
    inc.timer?.cancel();
    const ms = inc.adopted ? this.options.releaseMs : this.options.idleMs;
    inc.timer = this.clock.after(ms, () => this.#end(migration, inc));
  }

  #end(migration: string, inc: Incoming): void {
    inc.timer?.cancel();
    this.#table.delete(migration);
    inc.adopted?.release();
  }

  #resize(inc: Incoming, total: number): void {
    if (total > this.options.maxStateBytes)
      throw new PayloadTooLarge(total, this.options.maxStateBytes, 'raise the node option maxMigrationBytes');
    if (total === inc.image.length) return;
    // Grown: a new buffer with what arrived so far; shrunk: a view (the tail is never read).
    if (total < inc.image.length) {
      inc.image = inc.image.subarray(0, total);
      return;
    }
    const grown = new Uint8Array(total);
    grown.set(inc.image);
    inc.image = grown;
  }

  #write(inc: Incoming, total: number, offset: number, data: Uint8Array): void {
    this.#resize(inc, total);
    if (offset + data.length > total)
      throw new InvalidOptions(`state part [${offset}, ${offset + data.length}) past the image (${total} B)`);
    inc.image.set(data, offset);
  }
}
