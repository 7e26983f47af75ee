import type { KV } from '@nats-io/kv';
import { DuplicateMessage } from '../errors.js';
import { decode, encode } from '../wire/codec.js';
import { failure, type Outcome } from '../wire/outcome.js';

/** Replies larger than this are not kept in the dedup record; a repeat then gets ACTOR_DUPLICATE. */
const KEPT_REPLY_BYTES = 256;

/**
 * An actor's persisted record (`stitch_<cluster>_state`, key `<type>.<id>`): its last snapshot and the
 * idempotency keys it has applied, in one KV value so both change atomically. Writes are
 * compare-and-set on the revision this activation read, which fences off an older activation that
 * still runs after a takeover.
 */
export class StateRecord {
  snapshot: Uint8Array | undefined;
  readonly processed = new Map<string, Outcome>();
  superseded = false;
  #revision = 0;
  #writes: Promise<void> = Promise.resolve();
  readonly #kv: KV;
  readonly #key: string;
  readonly #keep: number;

  constructor(kv: KV, key: string, keep: number) {
    this.#kv = kv;
    this.#key = key;
    this.#keep = keep;
  }

  async load(): Promise<void> {
    const e = await this.#kv.get(this.#key);
    if (!e) return;
    this.#revision = e.revision;
    if (e.operation !== 'PUT') return;
    const rec = decode(e.value) as { s?: Uint8Array; k?: [string, Outcome][] };
    this.snapshot = rec.s ?? undefined;
    for (const [k, out] of rec.k ?? []) this.processed.set(k, out);
  }

  remember(key: string, out: Outcome): void {
    const kept: Outcome =
      out.ok && out.data.length > KEPT_REPLY_BYTES
        ? failure(new DuplicateMessage(key, out.data.length))
        : out;
    this.processed.set(key, kept);
    if (this.processed.size > this.#keep) this.processed.delete(this.processed.keys().next().value!);
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

  async #write(): Promise<void> {
    const value = encode({ s: this.snapshot ?? null, k: [...this.processed] });
    try {
      this.#revision =
        this.#revision === 0
          ? await this.#kv.create(this.#key, value)
          : await this.#kv.update(this.#key, value, this.#revision);
    } catch (err) {
      if (/wrong last sequence|key exists/i.test(String(err))) this.superseded = true;
      throw err;
    }
  }
}
