import type { KV } from '@nats-io/kv';
import { TimeoutError } from '@nats-io/transport-node';
import { type Clock, sleep, systemClock } from '../clock.js';
import { Timeout } from '../errors.js';
import type { RecordMark, ShippedRecord } from '../migration/image.js';
import { decode, encode, ownBytes } from '../wire/codec.js';
import type { ImageBytes } from '../wire/image.js';
import { type JetStreamPublisher, jetStreamPublisher } from '../wire/js-publish.js';
import { inboxPrefixOf } from '../wire/nats-internals.js';
import type { Outcome } from '../wire/outcome.js';
import { OutgoingHeaders } from '../wire/outgoing-headers.js';
import { runsOf, seqRuns } from './committed-seqs.js';
import type { Host } from './host.js';
import { BLOCK, type Entry, firstBlock, GAP, KeptOutcomes } from './kept-outcomes.js';
import {
  ChunkMissing,
  FrozenSnapshot,
  INLINE_SNAPSHOT_BYTES,
  MAX_CHUNK_BYTES,
  SnapshotChunks,
  validChunkBytes,
} from './snapshot-chunks.js';
import { SnapshotSlabs } from './snapshot-slabs.js';
import { MAX_UNCONFIRMED_RUNS, MAX_UNCONFIRMED_SEQS, UnconfirmedCommits } from './unconfirmed-commits.js';

/** A KV write refused because another write came first (compare-and-set on the revision). */
const CONFLICT = /wrong last sequence|key exists/i;

/** JetStream's compare-and-set header: the write fails unless the key's last revision is this one. */
const EXPECTED_LAST_SEQ = 'Nats-Expected-Last-Subject-Sequence';
/**
 * One try of a record update published through `direct` waits this long for the stream's answer
 * (through `kv.update`, nats.js's request timeout). On a cluster a stored update is answered in
 * milliseconds; an answer lost with a server that stopped as it stored the write never comes, so the
 * record is read to see whether the write landed, and the write is tried again if not.
 */
const WRITE_ATTEMPT_MS = 1000;
/** How long a chunk's write waits for its stream's answer (nats.js's default for `kv.put`). */
const CHUNK_WRITE_MS = 5000;
const WRITE_ATTEMPTS = 5;
/** Reads of a record whose chunks a concurrent commit replaced, before loading gives up. */
const READ_ATTEMPTS = 10;
/**
 * Keys a write records beyond the window when it is the first to hold them (see #write): a commit's
 * batch and what ran during its write, where the window is small or turns piled up.
 */
const FIRST_HELD_KEYS = 256;

/** Where the record's updates are published without nats.js `kv.update`: the KV subject of its key. */
export interface DirectWrites {
  publisher: JetStreamPublisher;
  subject: string;
}

/** The record as stored. Records written before blocks existed have only `s` and `k`. */
interface Stored {
  v?: number;
  s?: Uint8Array | null;
  /** A snapshot stored in chunks (see SnapshotChunks): their names in order, and its length. */
  c?: string[];
  z?: number;
  /** The chunks' size; records without it have chunks of MAX_CHUNK_BYTES. */
  q?: number;
  /** Chunks may exist (some write was chunked): loading sweeps what crashed writes left. */
  x?: number;
  /** Keys applied so far; the next one is number `n`. */
  n?: number;
  /** First block kept: keys numbered below `g * BLOCK` are forgotten. */
  g?: number;
  /** Blocks `g .. h - 1` are sealed in their slots; the tail `t` holds keys `max(g, h) * BLOCK .. n - 1`. */
  h?: number;
  /** Number of block slots; block `j` lives in slot `j % m`. */
  m?: number;
  t?: Entry[];
  k?: [string, Outcome][];
  /** Committed stream sequences not known acknowledged whose keys are dropped (UnconfirmedCommits). */
  u?: [number, number][];
}

const count = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const asArray = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
const gaps = (n: number): Entry[] => Array.from({ length: n }, () => GAP);
/** Bytes a shipped chunk or block takes besides its own (see shipment). */
const SHIPPED_ROOM = 16;

/** A block slot's value: the block it holds and its entries; undefined when it is not one. */
function slotBlock(value: Uint8Array): [number, Entry[]] | undefined {
  const [held, entries] = asArray(decode(value));
  return count(held) && Array.isArray(entries) && entries.length === BLOCK
    ? [held, entries as Entry[]]
    : undefined;
}

/**
 * An actor's persisted record (`stitch_<cluster>_state`, key `<type>.<id>`): its last snapshot and the
 * outcomes of the durable keys it applied, in one KV value so both change atomically. Writes are
 * compare-and-set on the revision this activation read, which fences off an older activation that
 * still runs after a takeover.
 *
 * A write carries the snapshot and only the latest outcomes (the tail, under 2 × BLOCK in steady
 * state), not all of those kept: once a block of BLOCK outcomes is committed it is written to a slot
 * key of its own (`<type>.<id>.b<slot>`, a ring of slots reused as old blocks leave the window), and
 * the next write records it as sealed and drops it from the tail. A block's content is fixed once its
 * keys are committed, so whichever activation writes it writes the same bytes; a slot is overwritten
 * only by a newer block (compare-and-set, then the block number stored in it decides).
 *
 * A snapshot above INLINE_SNAPSHOT_BYTES is written in chunks of its own before the record, which
 * names them (see SnapshotChunks): only the chunks that changed are written, so a large state whose
 * turns change little costs little per commit, and the state is bounded by the bucket, not by
 * max_payload.
 */
export class StateRecord {
  #snapshot: ImageBytes | undefined;
  readonly #slabs = new SnapshotSlabs();
  readonly kept = new KeptOutcomes();
  /** Written with each record: see UnconfirmedCommits. */
  readonly unconfirmed: UnconfirmedCommits;
  superseded = false;
  #revision = 0;
  #writes: Promise<void> = Promise.resolve();
  /** Ring size, first block kept, blocks sealed and keys committed, as of the last write or load. */
  #ring: number;
  #first = 0;
  #sealed = 0;
  #committed = 0;
  #sealing = false;
  /** The last record this activation wrote, as stored (see shipment). */
  #lastWrite: { revision: number; value: Uint8Array } | undefined;
  /** The blocks the record at #revision says are sealed, as last read or written (see mark). */
  #recordSealed = 0;
  /** The record as the last read found it, until a write replaces it (see fence). */
  #lastRead: { revision: number; value: Uint8Array } | undefined;
  readonly #slotRevisions = new Map<number, number>();
  /**
   * The blocks the last load read, by number: a block's outcomes never change once sealed, so a load
   * again (a migration's commit, after the source committed more) reads only the blocks sealed since.
   */
  #blocksRead = new Map<number, Entry[]>();
  readonly #kv: KV;
  readonly #key: string;
  readonly #window: number;
  readonly #report: (err: unknown) => void;
  readonly #direct: DirectWrites | undefined;
  readonly #chunks: SnapshotChunks | undefined;
  readonly #clock: Clock;
  #chunked = false;
  #swept = false;

  /**
   * `window`: how many of the latest keys stay remembered; `report` hears of blocks that failed to
   * write; `direct`, when given, publishes the record's updates itself (see JetStreamPublisher);
   * `chunks`, when given, stores large snapshots (without it a snapshot must fit in the record);
   * `clock` times the waits before a read again; `unconfirmedMs`: how long a commit not known
   * acknowledged is listed (see UnconfirmedCommits).
   */
  constructor(
    kv: KV,
    key: string,
    window: number,
    report: (err: unknown) => void = () => undefined,
    direct?: DirectWrites,
    chunks?: SnapshotChunks,
    clock: Clock = systemClock,
    unconfirmedMs = 15_000,
  ) {
    this.#clock = clock;
    this.unconfirmed = new UnconfirmedCommits(clock, unconfirmedMs);
    this.#kv = kv;
    this.#key = key;
    this.#window = window;
    this.#report = report;
    this.#direct = direct;
    this.#chunks = chunks;
    this.#ring = Math.ceil(window / BLOCK) + 1;
  }

  /**
   * An activation's record, its updates published through the connection's acknowledgement inbox
   * when the inbox prefix is known (the host's, or nats.js's on the fast path), else with `kv.update`.
   */
  static of(host: Host, key: string, window: number, unconfirmedMs: number): StateRecord {
    const report = (err: unknown) => host.guard.report('actor state blocks', err, { actor: key });
    const prefix = host.inboxPrefix ?? inboxPrefixOf(host.nc);
    const direct =
      prefix === undefined
        ? undefined
        : {
            publisher: jetStreamPublisher(host.nc, prefix, host.clock, host.guard),
            subject: `$KV.${host.names.stateBucket}.${key}`,
          };
    const chunks = new SnapshotChunks(
      host.stateKv,
      host.jsm,
      host.names.stateBucket,
      key,
      report,
      undefined,
      direct && { publisher: direct.publisher, timeoutMs: CHUNK_WRITE_MS },
    );
    return new StateRecord(host.stateKv, key, window, report, direct, chunks, host.clock, unconfirmedMs);
  }

  /** The record's revision as this activation last read or wrote it (0: none stored). */
  get revision(): number {
    return this.#revision;
  }

  /**
   * A migration's target: its loads sweep nothing. What the source's records replaced its writer
   * purges itself (after a crash the next activation sweeps), and a sweep's listing and purges at
   * `begin` and in the pause slowed the source's pause by 3–6 ms at 1 MiB.
   */
  noSweep(): void {
    this.#swept = true;
  }

  /** The record as this activation last read or wrote it: what a migration's target reads at the latest. */
  mark(): RecordMark {
    return { revision: this.#revision, sealed: this.#recordSealed };
  }

  /**
   * The record this activation wrote last, as stored, when it is the current revision and at most
   * `maxBytes`; with it, as many as fit of the chunks it names and the outcome blocks it says are
   * sealed that were written since `since` (what a reader of that record or a later one may lack).
   * A migration's source sends it with the commit, and the target loads it (see load) instead of
   * reading the record, its new chunks and blocks.
   */
  shipment(since: RecordMark, maxBytes: number): ShippedRecord | undefined {
    const w = this.#lastWrite;
    if (!w || w.revision !== this.#revision || w.value.length > maxBytes) return undefined;
    let room = maxBytes - w.value.length;
    const chunks: [string, Uint8Array][] = [];
    for (const [name, bytes] of this.#chunks?.namedSince(since.revision) ?? []) {
      if (name.length + bytes.length + SHIPPED_ROOM > room) break;
      chunks.push([name, bytes]);
      room -= name.length + bytes.length + SHIPPED_ROOM;
    }
    const blocks: Uint8Array[] = [];
    // At the revision this activation wrote, #recordSealed is that write's `h`.
    for (let j = Math.max(since.sealed, this.#first); j < this.#recordSealed; j++) {
      const block = encode([j, this.kept.slice(j * BLOCK, (j + 1) * BLOCK)]);
      if (block.length + SHIPPED_ROOM > room) break;
      blocks.push(block);
      room -= block.length + SHIPPED_ROOM;
    }
    return {
      record: w.value,
      ...(chunks.length > 0 ? { chunks } : {}),
      ...(blocks.length > 0 ? { blocks } : {}),
    };
  }

  /**
   * Reads the record; `atLeast`: a revision known to be written (a migration's source wrote it), read
   * again until the read reaches it (a replica that has not applied it yet may answer first).
   * `shipped`: that revision's record as its writer sent it (see shipment), loaded without a read of
   * it, or of the chunks and outcome blocks that came with it.
   */
  async load(atLeast = 0, shipped?: ShippedRecord): Promise<void> {
    await this.#load(atLeast, shipped);
    this.takenAt = this.kept.next;
  }

  async #load(atLeast: number, shipped?: ShippedRecord): Promise<void> {
    const rec = await this.#read(atLeast, shipped);
    for (const value of shipped?.blocks ?? []) {
      const block = slotBlock(ownBytes(value));
      if (block) this.#blocksRead.set(block[0], block[1]);
    }
    if (!rec) return;
    const unconfirmed = runsOf(rec.u ?? [], MAX_UNCONFIRMED_RUNS, MAX_UNCONFIRMED_SEQS);
    if (unconfirmed) this.unconfirmed.add(unconfirmed);
    else this.#report(new Error(`${this.#key}'s record lists unconfirmed commits this build cannot read`));
    const { n, g, h, m, t } = rec;
    if (
      rec.v !== 2 ||
      !count(n) ||
      !count(g) ||
      !count(h) ||
      !count(m) ||
      m < 1 ||
      !Array.isArray(t) ||
      t.length > n
    ) {
      // Written before blocks (or unreadable): every kept outcome is in `k`; the next write moves them.
      const k = Array.isArray(rec.k) ? rec.k : [];
      this.kept.restore(0, k);
      this.#committed = k.length;
      this.#recordSealed = 0;
      return;
    }
    this.#ring = m;
    this.#committed = n;
    const base = n - t.length;
    if (base !== Math.max(g, h) * BLOCK || h - g >= m) {
      // Inconsistent bounds: keep the tail only, aligned to its block.
      this.#first = this.#sealed = this.#recordSealed = Math.floor(base / BLOCK);
      this.kept.restore(this.#first * BLOCK, [...gaps(base % BLOCK), ...t]);
      return;
    }
    // Only the blocks this activation's window needs (a record may come from a larger one).
    const first = Math.max(g, firstBlock(n, this.#windowNow()));
    const tailBlock = Math.max(g, h);
    const numbers = Array.from({ length: Math.max(0, tailBlock - first) }, (_, i) => first + i);
    const read = await Promise.all(numbers.map((j) => this.#blocksRead.get(j) ?? this.#readBlock(j)));
    this.#blocksRead = new Map();
    const blocks = read.map((b, i) => {
      if (!b) return gaps(BLOCK);
      this.#blocksRead.set(numbers[i]!, b);
      return b;
    });
    this.kept.restore(Math.min(first, tailBlock) * BLOCK, [...blocks.flat(), ...t]);
    this.#forgetBelow(first * BLOCK);
    this.#first = first;
    this.#sealed = Math.max(first, h);
    this.#recordSealed = tailBlock;
  }

  /**
   * The stored record with its snapshot read (revision and snapshot set); undefined when none is
   * stored. A writer purges the chunks it replaces, so a record read just before a commit can name
   * chunks that are gone: then the newer record is read, the chunks already fetched kept.
   */
  async #read(atLeast: number, shipped?: ShippedRecord): Promise<Stored | undefined> {
    // Copies: a view would keep the whole commit it came in alive for as long as the chunk is named.
    const fetched = new Map<string, Uint8Array>(
      shipped?.chunks?.map(([name, bytes]) => [name, ownBytes(bytes)]),
    );
    for (let attempt = 1; ; attempt++) {
      const e =
        shipped && attempt === 1 && atLeast > 0
          ? { revision: atLeast, operation: 'PUT', value: shipped.record }
          : await this.#kv.get(this.#key);
      if ((e?.revision ?? 0) < atLeast) {
        if (attempt >= READ_ATTEMPTS)
          throw new Error(`${this.#key}'s record reads at revision ${e?.revision ?? 0}, below ${atLeast}`);
        await sleep(this.#clock, 5 * attempt);
        continue;
      }
      if (!e) return undefined;
      this.#revision = e.revision;
      this.#lastRead = e.operation === 'PUT' ? { revision: e.revision, value: e.value } : undefined;
      if (e.operation !== 'PUT') return undefined;
      const rec = (decode(e.value) ?? {}) as Stored;
      this.snapshot = rec.s instanceof Uint8Array ? rec.s : undefined;
      if (!this.#chunks) return rec;
      const { c, z, q = MAX_CHUNK_BYTES } = rec;
      try {
        if (Array.isArray(c) && c.every((n) => typeof n === 'string') && count(z)) {
          if (!validChunkBytes(q))
            throw new Error(
              `${this.#key}'s record states chunks of ${String(q)} bytes, a size this build cannot read`,
            );
          this.snapshot = await this.#chunks.read(c, z, q, fetched);
        } else this.#chunks.named(undefined, false);
      } catch (err) {
        if (err instanceof ChunkMissing && attempt < READ_ATTEMPTS) continue;
        throw err;
      }
      this.#chunked = this.#chunked || rec.x === 1 || Array.isArray(c);
      // Once per activation, and not by a migration's target (see noSweep).
      if (this.#chunked && !this.#swept) {
        this.#swept = true;
        this.#chunks.sweep(e.revision).catch(this.#report);
      }
      return rec;
    }
  }

  /**
   * Stores the record just read again, unchanged, over its revision. A new activation does this before
   * it serves: an older activation of the actor still running somewhere (on a node that was cut off
   * and comes back) then finds its next write a conflict and stops as superseded, rather than win the
   * race to the next revision and make this one stop. A conflict here means an older activation
   * committed since the read: its record is read again (its effects kept) and fenced.
   */
  async fence(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const read = this.#lastRead;
      if (!read || read.revision !== this.#revision) return;
      try {
        this.#revision = await this.#updateOnce(read.value, read.revision);
        this.#lastRead = undefined;
        return;
      } catch (err) {
        if (!CONFLICT.test(String(err)) || attempt >= WRITE_ATTEMPTS) throw err;
        await this.load();
      }
    }
  }

  /** The recorded outcome of an applied key. */
  outcome(key: string): Outcome | undefined {
    return this.kept.get(key);
  }

  /** `seq`: a durable message's stream sequence. */
  remember(key: string, out: Outcome, seq?: number): void {
    this.kept.add(key, out, seq);
  }

  /** Drops the outcomes numbered below `n`; their sequences go on in the unconfirmed ones. */
  #forgetBelow(n: number): void {
    this.unconfirmed.add(seqRuns(this.kept.seqsBelow(n)));
    this.kept.dropBelow(n);
  }

  /**
   * Writes the record as it is when the write starts. Writes are chained: a durable commit and a
   * periodic fast-mode save must not race on the same revision (the loser would look superseded).
   */
  save(): Promise<void> {
    const write = this.#writes.then(
      () => this.#write(),
      () => this.#write(),
    );
    this.#writes = write.catch(() => undefined);
    return write;
  }

  /**
   * Where a write takes the snapshot and the keys it records: immediately (the snapshot is the last
   * turn's), or, for an actor that snapshots on demand, through `capture`, which sets `snapshot` to
   * the state at a turn boundary and then calls `done` (with the error when it could not).
   */
  capture: ((done: (err?: unknown) => void) => void) | undefined;
  /** Keys applied (kept.next) when the last write took its snapshot, or when the record was read. */
  takenAt = 0;

  /**
   * The snapshot the next write records and a restart restores: an encoding, a segmented image of the
   * live state (fixed by the write that takes it), or the chunks a write fixed. Whoever reads it may
   * keep it: its bytes are never written over.
   */
  get snapshot(): ImageBytes | undefined {
    this.#slabs.read();
    return this.#snapshot;
  }

  set snapshot(snapshot: ImageBytes | undefined) {
    this.#slabs.replaced();
    this.#snapshot = snapshot;
  }

  /** A turn's snapshot, `value` encoded: in a buffer used again while nothing reads the snapshots. */
  encodeSnapshot(value: unknown): void {
    this.#snapshot = this.#slabs.encode(value);
  }

  /**
   * The keys applied and the snapshot, at one instant: a snapshot that reads live state (a segmented
   * image) is fixed now — as chunks when large, each copied only if it changed since the last record —
   * and becomes the snapshot a restart restores. Chunks are copies, so a turn's encoding cut in chunks
   * keeps its buffer for reuse; one written whole is the write's and keeps it.
   */
  #take(): Promise<{ n: number; snapshot: Uint8Array | FrozenSnapshot | undefined }> {
    const take = () => {
      this.takenAt = this.kept.next;
      const snap = this.#snapshot;
      let fixed: Uint8Array | FrozenSnapshot | undefined;
      if (snap === undefined || snap instanceof FrozenSnapshot) fixed = snap;
      else if (snap.length > INLINE_SNAPSHOT_BYTES && this.#chunks)
        fixed = this.#chunks.freeze(snap, this.#revision);
      else if (snap instanceof Uint8Array) {
        this.#slabs.read();
        fixed = snap;
      } else fixed = new Uint8Array(snap.subarray(0, snap.length));
      if (!(snap instanceof Uint8Array)) this.snapshot = fixed;
      return { n: this.takenAt, snapshot: fixed };
    };
    const capture = this.capture;
    if (!capture) return Promise.resolve(take());
    return new Promise((resolve, reject) => capture((err) => (err ? reject(err) : resolve(take()))));
  }

  async #write(): Promise<void> {
    const { n, snapshot } = await this.#take();
    // Never past the keys this write is the first to hold (more than the window when turns piled up
    // during a slow write): their replies and acks wait for it, and a crash before them brings their
    // messages back, to be answered from here. At most FIRST_HELD_KEYS of them beyond the window (the
    // record must fit max_payload): older ones are known by their sequences only (see unconfirmed).
    const g = Math.max(
      this.#first,
      firstBlock(n, this.#windowNow() + FIRST_HELD_KEYS),
      Math.min(firstBlock(n, this.#windowNow()), Math.floor(this.#committed / BLOCK)),
    );
    const h = Math.max(this.#sealed, g);
    const t = this.kept.slice(h * BLOCK, n);
    // Listed in the write that drops their keys; held here once it is stored.
    const dropped = seqRuns(this.kept.seqsBelow(g * BLOCK));
    const u = this.unconfirmed.runsWith(dropped);
    const frozen = snapshot instanceof FrozenSnapshot ? snapshot : undefined;
    if (frozen) {
      await this.#chunks!.write(frozen);
      this.#chunked = true;
    }
    const names = frozen?.names ?? [];
    const value = encode({
      v: 2,
      s: frozen ? null : ((snapshot as Uint8Array | undefined) ?? null),
      ...(frozen ? { c: names, z: frozen.length, q: frozen.chunkBytes } : {}),
      ...(this.#chunked ? { x: 1 } : {}),
      n,
      g,
      h,
      m: this.#ring,
      t,
      ...(u.length > 0 ? { u } : {}),
    });
    try {
      this.#revision =
        this.#revision === 0
          ? await this.#kv.create(this.#key, value)
          : await this.#updateOnce(value, this.#revision);
    } catch (err) {
      if (frozen) this.#chunks!.abandoned(names);
      if (CONFLICT.test(String(err))) this.superseded = true;
      throw err;
    }
    this.#chunks?.named(frozen, true);
    this.#lastWrite = { revision: this.#revision, value };
    this.#recordSealed = h;
    this.#first = g;
    this.#sealed = Math.max(this.#sealed, h);
    this.#committed = Math.max(this.#committed, n);
    this.unconfirmed.add(dropped);
    this.kept.dropBelow(g * BLOCK);
    // After this turn: the commit's replies and acks go out first, not behind a block write.
    setImmediate(() => void this.#seal());
  }

  /** Writes every block whose keys are all committed, oldest first; a failure waits for the next write. */
  async #seal(): Promise<void> {
    if (this.#sealing) return;
    this.#sealing = true;
    try {
      for (;;) {
        const j = Math.max(this.#sealed, this.#first);
        if ((j + 1) * BLOCK > this.#committed) return;
        await this.#writeBlock(j, this.kept.slice(j * BLOCK, (j + 1) * BLOCK));
        this.#sealed = Math.max(this.#sealed, j + 1);
      }
    } catch (err) {
      this.#report(err);
    } finally {
      this.#sealing = false;
    }
  }

  /**
   * Stores `value` over `revision` once, whatever answers are lost on the way: a try with no answer
   * is followed by a read, and a write found stored (the revision after ours holds our bytes) counts as
   * done — so that a lost answer is not tried again into a conflict and taken for a newer owner. A
   * conflict after such a try is a newer owner only when the stored record is not ours.
   */
  async #updateOnce(value: Uint8Array, revision: number): Promise<number> {
    let unsure = false;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#update(value, revision);
      } catch (err) {
        const lost = err instanceof Timeout || err instanceof TimeoutError;
        if (!lost && !(unsure && CONFLICT.test(String(err)))) throw err;
        unsure = true;
        const landed = await this.#stored(value, revision);
        if (landed !== undefined) return landed;
        if (!lost || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  /** The revision after `revision` when it holds exactly `value`; undefined when not (or unreadable). */
  async #stored(value: Uint8Array, revision: number): Promise<number | undefined> {
    const e = await this.#kv.get(this.#key).catch(() => null);
    if (e?.operation !== 'PUT' || e.revision <= revision) return undefined;
    return Buffer.from(e.value).equals(value) ? e.revision : undefined;
  }

  /** `kv.update`, or the same publish (expected last subject sequence) through `direct`. */
  async #update(value: Uint8Array, revision: number): Promise<number> {
    if (!this.#direct) return this.#kv.update(this.#key, value, revision);
    const h = new OutgoingHeaders();
    h.set(EXPECTED_LAST_SEQ, String(revision));
    const ack = await this.#direct.publisher.publish(this.#direct.subject, value, h, WRITE_ATTEMPT_MS);
    if (ack.error || !count(ack.seq))
      throw new Error(
        `could not write ${this.#key}: ${ack.error?.description ?? 'no sequence in the answer'}`,
      );
    return ack.seq;
  }

  /** Keys kept: this activation's window, within what the record's ring of slots can hold. */
  #windowNow(): number {
    return Math.min(this.#window, (this.#ring - 1) * BLOCK);
  }

  #slotKey(block: number): string {
    return `${this.#key}.b${block % this.#ring}`;
  }

  /** Block `j`'s entries; undefined when its slot holds another block or nothing (its keys are forgotten). */
  async #readBlock(j: number): Promise<Entry[] | undefined> {
    const e = await this.#kv.get(this.#slotKey(j));
    if (e) this.#slotRevisions.set(j % this.#ring, e.revision);
    const block = e?.operation === 'PUT' ? slotBlock(e.value) : undefined;
    return block?.[0] === j ? block[1] : undefined;
  }

  async #writeBlock(j: number, entries: Entry[]): Promise<void> {
    const slot = j % this.#ring;
    const key = this.#slotKey(j);
    const value = encode([j, entries]);
    for (let attempt = 0; attempt < 3; attempt++) {
      const revision = this.#slotRevisions.get(slot) ?? 0;
      try {
        this.#slotRevisions.set(
          slot,
          revision === 0 ? await this.#kv.create(key, value) : await this.#kv.update(key, value, revision),
        );
        return;
      } catch (err) {
        if (!CONFLICT.test(String(err))) throw err;
      }
      // Written meanwhile, by another activation: done if it holds this block or a newer one.
      const e = await this.#kv.get(key);
      this.#slotRevisions.set(slot, e?.revision ?? 0);
      const held = e?.operation === 'PUT' ? asArray(decode(e.value))[0] : undefined;
      if (typeof held === 'number' && held >= j) return;
    }
    throw new Error(`block ${j} of ${this.#key} could not be written: its slot keeps changing`);
  }
}
