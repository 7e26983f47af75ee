/** Something queued for one subject; `bytes` is an upper bound of its share of the batch payload. */
export interface Coalescable {
  bytes: number;
}

/**
 * Collects what one tick sends to the same subject and hands it over as one batch on the next
 * microtask, so a burst of asks (or of replies) becomes one NATS message instead of one each.
 * Order per subject is kept: an item too large to share a batch first flushes what is queued for its
 * subject, then goes alone. A batch never grows past `room` bytes. After a tick of a single item, the
 * first item of the next tick is handed over at once (see `add`).
 */
export class Coalescer<I extends Coalescable> {
  #pending = new Map<string, { items: I[]; bytes: number }>();
  readonly #room: number;
  readonly #send: (subject: string, items: I[]) => void;
  #scheduled = false;
  readonly #flushLater = () => this.flush();
  /** Items added this tick, and whether the last tick had a single one. */
  #added = 0;
  #lone = false;

  /** `send` must not throw: it reports failures to the items itself. */
  constructor(room: number, send: (subject: string, items: I[]) => void) {
    this.#room = room;
    this.#send = send;
  }

  add(subject: string, item: I): void {
    this.#added++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flushLater);
      // After a tick of one item (a caller asking serially), the first item of a tick goes at once:
      // it would most likely be batched with nothing, and it skips the batch and the microtask hop.
      // Anything after it in the same tick is batched behind it, in order; a burst turns this off.
      if (this.#lone) {
        this.#send(subject, [item]);
        return;
      }
    }
    if (item.bytes > this.#room) {
      this.#flushSubject(subject);
      this.#send(subject, [item]);
      return;
    }
    let batch = this.#pending.get(subject);
    if (batch && batch.bytes + item.bytes > this.#room) {
      this.#flushSubject(subject);
      batch = undefined;
    }
    if (!batch) {
      batch = { items: [], bytes: 0 };
      this.#pending.set(subject, batch);
    }
    batch.items.push(item);
    batch.bytes += item.bytes;
  }

  /** Sends everything queued now. */
  flush(): void {
    this.#scheduled = false;
    this.#lone = this.#added === 1;
    this.#added = 0;
    const pending = this.#pending;
    if (pending.size === 0) return;
    // A fresh Map, not clear(): a cleared V8 Map's old table links to its new one, so each tick's
    // batches stayed reachable from promoted garbage and were promoted with it (measured: ~1.7 KB
    // promoted per serial ask, and a mark-compact every few thousand asks).
    this.#pending = new Map();
    for (const [subject, batch] of pending) this.#send(subject, batch.items);
  }

  #flushSubject(subject: string): void {
    const batch = this.#pending.get(subject);
    if (!batch) return;
    this.#pending.delete(subject);
    this.#send(subject, batch.items);
  }
}
