import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { nuid } from '@nats-io/transport-node';
import { bucketKeys } from '../cluster/bucket-keys.js';
import type { ImageBytes } from '../wire/image.js';
import type { JetStreamPublisher } from '../wire/js-publish.js';
import { OutgoingHeaders } from '../wire/outgoing-headers.js';
import { purgeQueue } from './purge-queue.js';

/** A snapshot longer than this is stored in chunks (a KV value is bounded by max_payload). */
export const INLINE_SNAPSHOT_BYTES = 256 * 1024;

/**
 * The largest chunk, and the size of every chunk of a record that does not state its own (records
 * written before chunk sizes varied).
 */
export const MAX_CHUNK_BYTES = 256 * 1024;

/**
 * The smallest chunk a write cuts: a commit writes every chunk a turn changed, so a state changed in
 * a few places costs a few small chunks (at 1 MiB, 16 KiB each instead of 256), while the record
 * names one chunk per CHUNKS_AIMED-th of the state at most.
 */
const MIN_CHUNK_BYTES = 16 * 1024;
const CHUNKS_AIMED = 256;

/**
 * The chunk size for a snapshot of `total` bytes: a power of two giving about CHUNKS_AIMED chunks,
 * within MIN_CHUNK_BYTES..MAX_CHUNK_BYTES. `current`, the size the last record used, is kept while
 * within a factor of two of that, so a state whose length wavers does not rewrite every chunk.
 */
export function chunkBytesFor(total: number, current?: number): number {
  let fit = MIN_CHUNK_BYTES;
  while (fit < MAX_CHUNK_BYTES && fit * CHUNKS_AIMED < total) fit *= 2;
  if (current !== undefined && current >= MIN_CHUNK_BYTES && current <= MAX_CHUNK_BYTES)
    if (current * 2 >= fit && current <= fit * 2) return current;
  return fit;
}

/** A chunk size a record may state: a power of two from 1 KiB to MAX_CHUNK_BYTES. */
export function validChunkBytes(x: unknown): x is number {
  return (
    Number.isSafeInteger(x) &&
    (x as number) >= 1024 &&
    (x as number) <= MAX_CHUNK_BYTES &&
    ((x as number) & ((x as number) - 1)) === 0
  );
}

/** Chunk writes and reads in flight at once. */
const WINDOW = 8;
/**
 * How long chunks a newer record replaced stay readable: a reader of a large snapshot (a migration's
 * target at `begin`, a new activation) fetches for a while, and a busy actor commits meanwhile.
 */
const REPLACED_KEPT_MS = 10_000;

/**
 * A snapshot as its chunks, fixed at one instant: the chunks that changed since the last record are
 * copies, the others the bytes that record named.
 */
export class FrozenSnapshot implements ImageBytes {
  constructor(
    readonly names: string[],
    readonly chunks: Uint8Array[],
    /** Indexes of the chunks the last record did not name: the ones a write stores. */
    readonly changed: number[],
    readonly length: number,
    /** Every chunk's size but the last's. */
    readonly chunkBytes: number,
  ) {}

  subarray(start: number, end: number): Uint8Array {
    const size = this.chunkBytes;
    const first = Math.floor(start / size);
    // Within one chunk (a migration compares the record block by block): a view of it.
    if (end > start && first === Math.floor((end - 1) / size)) {
      const at = first * size;
      return this.chunks[first]!.subarray(start - at, end - at);
    }
    const out = new Uint8Array(Math.max(0, end - start));
    for (let i = first; i * size < end; i++) {
      const at = i * size;
      const from = Math.max(start, at);
      const to = Math.min(end, at + this.chunks[i]!.length);
      if (from < to) out.set(this.chunks[i]!.subarray(from - at, to - at), from - start);
    }
    return out;
  }
}

/**
 * Its own function, so that the timer holds `gone` and `purge` only: a closure made where the chunks
 * are in scope would keep them (the whole snapshot) alive for the wait, after a migration too.
 */
function purgeLater(purge: (names: string[]) => void, gone: string[], ms: number): void {
  setTimeout(() => purge(gone), ms).unref();
}

/** `c.<base>.<writer>.<index>`: the record revision the write built on, and who wrote it. */
const NAME = /^c\.(\d+)\.[A-Za-z0-9]+\.\d+$/;

/** A chunk the record named is gone: replaced by a newer record (read it again), or lost. */
export class ChunkMissing extends Error {
  constructor(key: string, name: string) {
    super(`chunk ${name} of ${key}'s snapshot is missing: its record was replaced meanwhile, or lost`);
  }
}

async function inWindow<T>(items: T[], each: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await each(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, items.length) }, lane));
}

/**
 * The chunks of one actor's large snapshot, as keys `<record key>.c.<base>.<writer>.<index>` of the
 * state bucket. A chunk is never rewritten: a write names new chunks only for the parts that changed
 * (compared with the chunks the last record named) and the record, written after them by
 * compare-and-set, says which chunks make the snapshot. Names carry the writer, so an older activation
 * that still writes (and will lose the compare-and-set) cannot overwrite a chunk the record names.
 * Chunks nobody names any more are purged from the stream, leaving no delete markers behind.
 */
export class SnapshotChunks {
  /** The chunks the last record named (read or written here), with their bytes, and their size. */
  #named = new Map<string, Uint8Array>();
  #order: string[] = [];
  #chunkBytes: number | undefined;
  readonly #writer = nuid.next();

  /**
   * `publisher`, when given, stores chunks through the connection's acknowledgement inbox (see
   * JetStreamPublisher) instead of `kv.put`, whose `request()` costs more per call.
   */
  constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
    private readonly key: string,
    private readonly report: (err: unknown) => void,
    private readonly replacedKeptMs = REPLACED_KEPT_MS,
    private readonly publisher?: { publisher: JetStreamPublisher; timeoutMs: number },
  ) {}

  /**
   * Fixes `image` as chunks now, comparing each with the chunk the last record named: changed ones
   * are copied (a segmented image reads live state; an encoding's buffer may take a later turn's
   * snapshot). Names of new chunks carry `base`, the record revision the write will build on. Chunks
   * of another size than the last record's are all new.
   */
  freeze(image: ImageBytes, base: number): FrozenSnapshot {
    const size = chunkBytesFor(image.length, this.#chunkBytes);
    const order = size === this.#chunkBytes ? this.#order : [];
    const names: string[] = [];
    const chunks: Uint8Array[] = [];
    const changed: number[] = [];
    for (let i = 0, at = 0; at < image.length; i++, at += size) {
      const bytes = image.subarray(at, Math.min(image.length, at + size));
      const prev = order[i];
      const held = prev === undefined ? undefined : this.#named.get(prev);
      if (held && Buffer.compare(held, bytes) === 0) {
        names.push(prev!);
        chunks.push(held);
      } else {
        names.push(`c.${base}.${this.#writer}.${i}`);
        // Not Buffer#slice, which views: a snapshot encoded into a reused buffer is a Buffer.
        chunks.push(Uint8Array.prototype.slice.call(bytes));
        changed.push(i);
      }
    }
    return new FrozenSnapshot(names, chunks, changed, image.length, size);
  }

  /** Writes the chunks of `frozen` that the last record did not name. */
  async write(frozen: FrozenSnapshot): Promise<void> {
    await inWindow(frozen.changed, (i) => this.#put(`${this.key}.${frozen.names[i]}`, frozen.chunks[i]!));
  }

  async #put(key: string, bytes: Uint8Array): Promise<void> {
    if (!this.publisher) {
      await this.kv.put(key, bytes);
      return;
    }
    const { publisher, timeoutMs } = this.publisher;
    const ack = await publisher.publish(`$KV.${this.bucket}.${key}`, bytes, new OutgoingHeaders(), timeoutMs);
    if (ack.error) throw new Error(`could not write ${key}: ${ack.error.description}`);
  }

  /**
   * The snapshot the record names, as its chunks (not assembled: a restore copies it anyway); chunks
   * held from the last record, or in `fetched` (an earlier attempt's), are not read again. Rejects
   * with ChunkMissing when a chunk is gone: a writer replaced it since the record was read, and the
   * caller reads the record again.
   */
  async read(
    names: string[],
    total: number,
    chunkBytes: number,
    fetched = new Map<string, Uint8Array>(),
  ): Promise<FrozenSnapshot> {
    if (names.length !== Math.ceil(total / chunkBytes))
      throw new Error(`${this.key}'s record names ${names.length} chunks for ${total} bytes`);
    const chunks: Uint8Array[] = new Array(names.length);
    await inWindow(names, async (name, i) => {
      let bytes = this.#named.get(name) ?? fetched.get(name);
      if (!bytes) {
        const e = await this.kv.get(`${this.key}.${name}`);
        if (e?.operation !== 'PUT') throw new ChunkMissing(this.key, name);
        bytes = e.value;
        fetched.set(name, bytes);
      }
      const at = i * chunkBytes;
      if (bytes.length !== Math.min(chunkBytes, total - at))
        throw new Error(
          `chunk ${name} of ${this.key}'s snapshot has ${bytes.length} bytes where ${total - at} remain`,
        );
      chunks[i] = bytes;
    });
    const frozen = new FrozenSnapshot(names, chunks, [], total, chunkBytes);
    this.named(frozen, false);
    return frozen;
  }

  /**
   * The record now names the chunks of `frozen` (none when the snapshot is inline). After a write of
   * this activation's (`replaced`), the chunks the previous record named and this one does not are
   * purged, `replacedKeptMs` later; after a read, the writer that replaced them purges them.
   */
  named(frozen: FrozenSnapshot | undefined, replaced: boolean): void {
    const names = frozen?.names ?? [];
    const kept = new Set(names);
    const gone = replaced ? this.#order.filter((n) => !kept.has(n)) : [];
    this.#order = names;
    this.#chunkBytes = frozen?.chunkBytes;
    this.#named = new Map(frozen ? names.map((n, i) => [n, frozen.chunks[i]!]) : []);
    if (gone.length === 0) return;
    if (this.replacedKeptMs <= 0) this.#purge(gone);
    else purgeLater(this.#purger(), gone, this.replacedKeptMs);
  }

  /** The chunks the last record names that a write building on `revision` or later made, with their bytes. */
  namedSince(revision: number): [string, Uint8Array][] {
    return this.#order.flatMap((name) => {
      const bytes = this.#named.get(name);
      return bytes && Number(NAME.exec(name)?.[1] ?? -1) >= revision
        ? [[name, bytes] as [string, Uint8Array]]
        : [];
    });
  }

  /** A write that lost its compare-and-set: the chunks it made are purged. */
  abandoned(names: string[]): void {
    this.#purge(names.filter((n) => !this.#order.includes(n)));
  }

  /**
   * Purges chunks left by writes that crashed before their record: those built on a revision below
   * the record's (no such write can commit any more) that the record does not name.
   */
  async sweep(revision: number): Promise<void> {
    const under = `${this.key}.c`;
    const stale = (await bucketKeys(this.jsm, this.bucket, under))
      .map((k) => k.slice(this.key.length + 1))
      .filter((n) => {
        const base = NAME.exec(n)?.[1];
        return base !== undefined && Number(base) < revision && !this.#order.includes(n);
      });
    this.#purge(stale);
  }

  #purge(names: string[]): void {
    this.#purger()(names);
  }

  /** Purges through the connection's queue (see PurgeQueue), a few requests at a time. */
  #purger(): (names: string[]) => void {
    const { jsm, bucket, key, report } = this;
    return (names) => {
      const queue = purgeQueue(jsm);
      for (const n of names) queue.purge(`KV_${bucket}`, `$KV.${bucket}.${key}.${n}`, report);
    };
  }
}
