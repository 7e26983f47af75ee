import { setImmediate } from 'node:timers/promises';
import type { Clock, Timer } from '../clock.js';
import { InvalidOptions, Overloaded, PayloadTooLarge } from '../errors.js';
import { ownBytes } from '../wire/codec.js';
import type { RecordImage, ShippedRecord } from './image.js';
import {
  type BeginAnswer,
  type ForwardedMessage,
  type HandoffRequest,
  type PullInbox,
  pullsUnder,
  shippedRecord,
} from './protocol.js';
import { type MigrationSlotLimits, MigrationSlots } from './slots.js';

/** An actor being migrated here, prepared at `begin` (its persisted record read) and taken over at the commit. */
export interface Prepared {
  /** Builds the state from `image` before the commit, so that changes (delta hooks) apply to it. */
  stage(image: Uint8Array | undefined): Promise<void>;
  /** Applies one encoded change to the staged state. */
  apply(change: Uint8Array): void;
  /** The snapshot of the record as read so far, when it is stored in chunks. */
  recordImage(): RecordImage | undefined;
  /** Reads the record again when the source wrote it since (see commit's `recordRevision`). */
  syncRecord(recordRevision: number, shipped: ShippedRecord | undefined): Promise<void>;
  /**
   * Moves the directory entry (compare-and-set on the source's revision) and starts the activation
   * from the staged state, or else from `image`, holding its subject. `recordRevision` is the source's
   * last write of the actor's persisted record: a record read earlier at another revision is loaded
   * from `record` (that write as stored, with what it names that was written since the target read
   * it, when the source sent them) or else read again. `durable`: the
   * actor has had durable messages (its consumer is made while the directory moves; without them, at
   * the release).
   * `merge`: forwarded messages are held with the direct ones until the release (see Activation.adopted).
   * `ran`: per sender, the count of the last message the source ran; what follows one runs at once.
   * `committed`: durable messages the source committed, by stream sequence (skipped if delivered here).
   * `pulls`: the consumer's pulls the source hands over (read here as they are, see Activation.takePulls).
   */
  commit(
    from: Pick<
      Extract<HandoffRequest, { op: 'commit' }>,
      | 'epoch'
      | 'revision'
      | 'recordRevision'
      | 'record'
      | 'recordChunks'
      | 'recordBlocks'
      | 'durable'
      | 'merge'
      | 'ran'
      | 'committed'
      | 'pulls'
    >,
    state: { staged: true } | { staged: false; image: Uint8Array | undefined },
  ): Promise<{ epoch: number; adopted: Adopted; pullsHeldMs?: number; directoryMs?: number }>;
  /** The migration ended without a commit: what `begin` started for it stops (see TakenPulls.watch). */
  discard(): void;
  /**
   * Why the source can no longer commit (its node is gone, or restarted and runs the actor no more), or
   * undefined while it may: asked when the source has been quiet a while before the commit.
   */
  sourceGone(): Promise<string | undefined>;
}

/** The target's activation after a commit: it queues forwarded messages, then what it held. */
export interface Adopted {
  forwarded(items: ForwardedMessage[]): void;
  /** The source forwarded the last of its durable messages: run those held, in stream order. */
  releaseDurable(): void;
  /** Every forwarded message is queued: release what reached the target directly, in order. */
  release(): void;
}

export interface IncomingOptions {
  /** Migrations into this node at once, and the begins that may wait for a place (see MigrationSlots). */
  slots: MigrationSlotLimits;
  /** Largest snapshot image accepted. */
  maxStateBytes: number;
  /** A migration that hears nothing for this long before its commit is dropped. */
  idleMs: number;
  /**
   * A source quiet for this long before its commit is asked after (Prepared.sourceGone), and again as
   * often until idleMs: a source that died mid-copy frees its place this soon, not at idleMs.
   */
  sourceCheckMs: number;
  /** Told of a migration dropped because its source is gone. */
  onSourceGone(type: string, id: string, why: string): void;
  /** After its commit, the target releases what it held this long after the source's last word. */
  releaseMs: number;
  /** This node takes over a source's durable pulls on inboxes under this prefix (BeginAnswer.pulls). */
  pullPrefix: () => string;
}

interface Incoming {
  type: string;
  id: string;
  image: Uint8Array;
  /** The state was built from the image and changes were applied to it (the image is dropped). */
  staged: boolean;
  /** The change being received, and how many of its bytes have come. */
  change: Uint8Array;
  changeReceived: number;
  /** Undefined while `begin` prepares (see handle). */
  prepared: Prepared | undefined;
  adopted: Adopted | undefined;
  /** Messages sent early (while the commit was on its way), queued at the commit. */
  early: ForwardedMessage[];
  /** Their encoded bytes: held like a state, they are bounded like one (maxStateBytes). */
  earlyBytes: number;
  /** The chunk names of the record the image was built from at `begin` (the image is that snapshot). */
  recordNames: string[] | undefined;
  /** Parts that differ from the record's snapshot, applied once the image is that of the source's record. */
  pending: { total: number; offset: number; data: Uint8Array }[];
  pendingBytes: number;
  timer: Timer | undefined;
  /** When the source was last heard (clock ms). */
  heardAt: number;
  /** A commit runs: the source was alive when it sent it, and the target finishes it whatever the source does. */
  committing: boolean;
}

/** A migration whose `begin` is answered. */
type Ready = Incoming & { prepared: Prepared };

/**
 * Building an image from a record yields to the event loop after copying this much: 100 MiB in one
 * go held a node's loop for 58-60 ms (page faults of the new array included).
 */
const BUILD_SLICE_BYTES = 8 * 1024 * 1024;

/** Messages held early for one migration, at most (the source's mailbox bounds them too). */
const MAX_EARLY = 10_000;

/**
 * Migrations into this node, by id: the snapshot image each is receiving, and after the commit the
 * activation it became. Bounded in number and bytes; one whose source went quiet is dropped.
 */
export class IncomingMigrations {
  readonly #table = new Map<string, Incoming>();
  readonly #slots: MigrationSlots;

  constructor(
    private readonly options: IncomingOptions,
    private readonly clock: Clock,
    /**
     * Checks that this node can host `type`/`id` and reads what it can before the commit; `watchPulls`:
     * the source's pull inboxes to subscribe to now (begin's `pulls`, those this node may read).
     */
    private readonly prepare: (
      type: string,
      id: string,
      watchPulls: PullInbox[] | undefined,
    ) => Promise<Prepared>,
  ) {
    this.#slots = new MigrationSlots(options.slots, clock);
  }

  get size(): number {
    return this.#table.size;
  }

  /** Begins waiting for a place. */
  get waiting(): number {
    return this.#slots.waiting;
  }

  async handle(req: HandoffRequest): Promise<unknown> {
    if (req.op === 'begin') return this.#begin(req);
    const entry = this.#table.get(req.migration);
    if (!entry) {
      if (req.op === 'abort') {
        this.#slots.cancel(req.migration);
        return null;
      }
      throw new InvalidOptions(`no migration ${req.migration} in progress here (expired or never begun)`);
    }
    // A source sends nothing before `begin` is answered; an abort meanwhile ends it once prepared.
    if (!entry.prepared) {
      if (req.op === 'abort') {
        this.#end(req.migration, entry);
        return null;
      }
      throw new InvalidOptions(`migration ${req.migration} is still beginning; wait for the answer to begin`);
    }
    const inc = entry as Ready;
    this.#touch(req.migration, inc);
    switch (req.op) {
      case 'state':
        if (inc.adopted) throw new InvalidOptions('state after the commit');
        // The source compares whole images again: what was staged is rebuilt from them at the commit.
        inc.staged = false;
        if (req.fromRecord) this.#hold(inc, req.total, req.offset, req.data);
        else this.#write(inc, req.total, req.offset, req.data);
        return null;
      case 'change':
        if (inc.adopted) throw new InvalidOptions('a change after the commit');
        await this.#changePart(inc, req.total, req.offset, req.data);
        return null;
      case 'commit': {
        if (inc.adopted) throw new InvalidOptions('a second commit');
        // A source hands over only inboxes under the prefix this node's begin answered with.
        if (req.pulls && !pullsUnder(req.pulls, this.options.pullPrefix()))
          throw new InvalidOptions(
            `a commit hands over pulls on inboxes this node did not offer to read; hand over those under its begin answer's prefix`,
          );
        inc.committing = true;
        try {
          return await this.#commit(req.migration, inc, req);
        } finally {
          inc.committing = false;
        }
      }
      case 'early': {
        if (inc.adopted) {
          inc.adopted.forwarded(req.items);
          return null;
        }
        const bytes = req.items.reduce((n, m) => n + m.b.byteLength, 0);
        if (inc.early.length + req.items.length > MAX_EARLY)
          throw new Overloaded(`a migration holds at most ${MAX_EARLY} messages before its commit`);
        if (inc.earlyBytes + bytes > this.options.maxStateBytes)
          throw new Overloaded(
            `a migration holds at most ${this.options.maxStateBytes} bytes of messages before its commit (maxMigrationBytes)`,
          );
        inc.early.push(...req.items);
        inc.earlyBytes += bytes;
        return null;
      }
      case 'forward':
        if (!inc.adopted) throw new InvalidOptions('forwarded messages before the commit');
        inc.adopted.forwarded(req.items);
        if (req.durable) inc.adopted.releaseDurable();
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

  /** The commit: the image brought to the source's state, then the activation started here. */
  async #commit(
    migration: string,
    inc: Ready,
    req: Extract<HandoffRequest, { op: 'commit' }>,
  ): Promise<unknown> {
    const t0 = performance.now();
    if (req.fromRecord) await this.#toRecord(inc, req.fromRecord, req.recordRevision, shippedRecord(req));
    else if (inc.pending.length > 0)
      throw new InvalidOptions('parts against the record came, but the commit names no record');
    if (req.part) this.#write(inc, req.total, req.part.offset, req.part.data);
    for (const p of req.parts ?? []) this.#write(inc, req.total, p.offset, p.data);
    if (req.change) await this.#apply(inc, req.change);
    let state: Parameters<Prepared['commit']>[1] = { staged: true };
    if (!inc.staged) {
      this.#resize(inc, req.total);
      state = { staged: false, image: req.total > 0 ? inc.image.subarray(0, req.total) : undefined };
    }
    const r = await inc.prepared.commit(req, state);
    inc.adopted = r.adopted;
    inc.image = new Uint8Array(0);
    // Those that came while the commit ran go first; any that come later are queued as they come.
    r.adopted.forwarded(inc.early);
    inc.early = [];
    inc.earlyBytes = 0;
    this.#touch(migration, inc);
    return {
      epoch: r.epoch,
      ...(r.pullsHeldMs !== undefined ? { pullsHeldMs: r.pullsHeldMs } : {}),
      workMs: performance.now() - t0,
      ...(r.directoryMs !== undefined ? { directoryMs: r.directoryMs } : {}),
    };
  }

  /** Drops every migration (the node is closing); adopted activations release what they held. */
  close(): void {
    this.#slots.close();
    for (const [id, inc] of this.#table) this.#end(id, inc);
  }

  async #begin(req: Extract<HandoffRequest, { op: 'begin' }>): Promise<BeginAnswer> {
    const { migration, type, id } = req;
    if (this.#table.has(migration) || this.#slots.isWaiting(migration))
      throw new InvalidOptions(`migration ${migration} has begun already`);
    // Synchronous when a place is free: the entry is in the table before handle() yields.
    if (!this.#slots.tryTake()) await this.#slots.wait(migration);
    for (const inc of this.#table.values())
      if (inc.type === type && inc.id === id) {
        this.#slots.give();
        throw new InvalidOptions(`${type}/${id} is already migrating here`);
      }
    // In the table from here (it holds its place until it ends), so that the node counts it.
    const inc: Incoming = {
      type,
      id,
      image: new Uint8Array(0),
      staged: false,
      change: new Uint8Array(0),
      changeReceived: 0,
      prepared: undefined,
      adopted: undefined,
      early: [],
      earlyBytes: 0,
      recordNames: undefined,
      pending: [],
      pendingBytes: 0,
      timer: undefined,
      heardAt: this.clock.now(),
      committing: false,
    };
    this.#table.set(migration, inc);
    const pulls = this.options.pullPrefix();
    const watch = req.pulls && pullsUnder(req.pulls, pulls) ? req.pulls : undefined;
    try {
      inc.prepared = await this.prepare(type, id, watch);
    } catch (err) {
      this.#drop(migration, inc);
      throw err;
    }
    // Aborted (or the node closed) while it prepared.
    if (this.#table.get(migration) !== inc) {
      inc.prepared.discard();
      throw new InvalidOptions(`migration ${migration} ended before its begin was answered`);
    }
    this.#touch(migration, inc);
    const record = req.fromRecord === true ? inc.prepared.recordImage() : undefined;
    if (!record || record.length > this.options.maxStateBytes) return { parts: true, pulls };
    // The image the source would copy is mostly this record's snapshot: built here, it need not travel.
    inc.image = new Uint8Array(record.length);
    await this.#copyChunks(inc, record, []);
    inc.recordNames = record.names;
    return { parts: true, record: true, pulls };
  }

  /**
   * Copies into the image the chunks of `record` whose names differ from `had` (all of them when it is
   * empty), yielding to the event loop after every BUILD_SLICE_BYTES copied.
   */
  async #copyChunks(inc: Incoming, record: RecordImage, had: string[]): Promise<void> {
    let since = 0;
    for (let i = 0, at = 0; i < record.chunks.length; at += record.chunks[i]!.length, i++) {
      if (record.names[i] === had[i]) continue;
      inc.image.set(record.chunks[i]!, at);
      since += record.chunks[i]!.length;
      if (since >= BUILD_SLICE_BYTES) {
        since = 0;
        await setImmediate();
      }
    }
  }

  /**
   * The commit names the record the source compared its image with: the image becomes that record's
   * snapshot (read again if the source wrote it since `begin`: only the chunks that changed), then
   * takes the parts held meanwhile. A record other than the one named fails the commit (the source
   * resumes), rather than build a state from another snapshot.
   */
  async #toRecord(
    inc: Ready,
    names: string[],
    recordRevision: number,
    shipped: ShippedRecord | undefined,
  ): Promise<void> {
    if (!inc.recordNames) throw new InvalidOptions('a commit against a record this node did not read');
    await inc.prepared.syncRecord(recordRevision, shipped);
    const record = inc.prepared.recordImage();
    if (!record || record.names.length !== names.length || record.names.some((n, i) => n !== names[i]))
      throw new InvalidOptions(
        `the record at revision ${recordRevision} is not the one the source compared its state with; the source keeps the actor`,
      );
    this.#resize(inc, record.length);
    await this.#copyChunks(inc, record, inc.recordNames);
    inc.recordNames = record.names;
    for (const p of inc.pending) this.#write(inc, p.total, p.offset, p.data);
    inc.pending = [];
    inc.pendingBytes = 0;
  }

  /** Holds a part that differs from the record's snapshot until the commit names that record. */
  #hold(inc: Incoming, total: number, offset: number, data: Uint8Array): void {
    if (offset + data.length > total)
      throw new InvalidOptions(`state part [${offset}, ${offset + data.length}) past the image (${total} B)`);
    if (inc.pendingBytes + data.length > this.options.maxStateBytes)
      throw this.#tooLarge(inc.pendingBytes + data.length);
    inc.pending.push({ total, offset, data: ownBytes(data) });
    inc.pendingBytes += data.length;
  }

  #touch(migration: string, inc: Incoming): void {
    inc.timer?.cancel();
    inc.heardAt = this.clock.now();
    if (inc.adopted) inc.timer = this.clock.after(this.options.releaseMs, () => this.#end(migration, inc));
    else this.#whileQuiet(migration, inc);
  }

  /** Before the commit: asks after a quiet source every sourceCheckMs, and ends the migration at idleMs. */
  #whileQuiet(migration: string, inc: Incoming): void {
    inc.timer?.cancel();
    const left = this.options.idleMs - (this.clock.now() - inc.heardAt);
    if (left <= 0) {
      this.#end(migration, inc);
      return;
    }
    inc.timer = this.clock.after(Math.min(this.options.sourceCheckMs, left), () => {
      inc.timer = undefined;
      this.#askAfterSource(migration, inc);
    });
  }

  #askAfterSource(migration: string, inc: Incoming): void {
    const heardAt = inc.heardAt;
    const stillQuiet = () => this.#table.get(migration) === inc && inc.heardAt === heardAt && !inc.adopted;
    // A commit that runs came from a live source: the target finishes it whatever the source does now.
    if (!inc.prepared || inc.committing || this.clock.now() - heardAt >= this.options.idleMs) {
      this.#whileQuiet(migration, inc);
      return;
    }
    // The idle bound holds while the question is out, however long it takes to be answered.
    inc.timer = this.clock.after(this.options.idleMs - (this.clock.now() - heardAt), () =>
      this.#end(migration, inc),
    );
    inc.prepared
      .sourceGone()
      .catch(() => undefined)
      .then((why) => {
        if (!stillQuiet()) return;
        if (why === undefined || inc.committing) this.#whileQuiet(migration, inc);
        else {
          this.#end(migration, inc);
          this.options.onSourceGone(inc.type, inc.id, why);
        }
      })
      .catch(() => undefined);
  }

  #end(migration: string, inc: Incoming): void {
    inc.timer?.cancel();
    this.#drop(migration, inc);
    if (inc.adopted) inc.adopted.release();
    else inc.prepared?.discard();
  }

  /** Takes `inc` out of the table, once, giving its place to the next begin. */
  #drop(migration: string, inc: Incoming): void {
    if (this.#table.get(migration) !== inc) return;
    this.#table.delete(migration);
    this.#slots.give();
  }

  #tooLarge(bytes: number): PayloadTooLarge {
    return new PayloadTooLarge(bytes, this.options.maxStateBytes, 'raise the node option maxMigrationBytes', {
      what: 'migrated state',
      limit: "this node's maxMigrationBytes",
    });
  }

  #resize(inc: Incoming, total: number): void {
    if (total > this.options.maxStateBytes) throw this.#tooLarge(total);
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

  /** One part of an encoded change; the part that completes it applies it. */
  async #changePart(inc: Ready, total: number, offset: number, data: Uint8Array): Promise<void> {
    if (total > this.options.maxStateBytes) throw this.#tooLarge(total);
    if (inc.changeReceived === 0) inc.change = new Uint8Array(total);
    if (total !== inc.change.length || offset + data.length > total)
      throw new InvalidOptions(
        `change part [${offset}, ${offset + data.length}) does not fit a ${total} B change`,
      );
    inc.change.set(data, offset);
    inc.changeReceived += data.length;
    if (inc.changeReceived < total) return;
    const change = inc.change;
    inc.change = new Uint8Array(0);
    inc.changeReceived = 0;
    await this.#apply(inc, change);
  }

  async #apply(inc: Ready, change: Uint8Array): Promise<void> {
    if (!inc.staged) {
      await inc.prepared.stage(inc.image.length > 0 ? inc.image : undefined);
      inc.staged = true;
      inc.image = new Uint8Array(0);
    }
    inc.prepared.apply(change);
  }

  #write(inc: Incoming, total: number, offset: number, data: Uint8Array): void {
    this.#resize(inc, total);
    if (offset + data.length > total)
      throw new InvalidOptions(`state part [${offset}, ${offset + data.length}) past the image (${total} B)`);
    inc.image.set(data, offset);
  }
}
