import { DuplicateMessage } from '../errors.js';
import { failure, type Outcome } from '../wire/outcome.js';

/** Idempotency keys of fast messages remembered per activation. */
const MAX_KEYS = 1000;
/** Bytes of replies remembered per activation; the oldest are forgotten first. */
const MAX_BYTES = 4 * 1024 * 1024;
/** A reply larger than this is remembered as "applied" only (a repeat gets ACTOR_DUPLICATE). */
const MAX_KEPT_REPLY = 64 * 1024;

const sizeOf = (out: Outcome) => (out.ok ? out.data.length : out.message.length + out.name.length + 16);

/**
 * The outcomes of the latest fast messages that carried an idempotency key, so a retry gets the same
 * reply instead of running the handler again. Bounded in keys and in bytes: replies come from handlers
 * that senders drive, and a thousand large replies must not pin a gigabyte.
 */
export class RecentOutcomes {
  readonly #byKey = new Map<string, Outcome>();
  #bytes = 0;

  get(key: string): Outcome | undefined {
    return this.#byKey.get(key);
  }

  remember(key: string, out: Outcome): void {
    const kept =
      out.ok && out.data.length > MAX_KEPT_REPLY ? failure(new DuplicateMessage(key, out.data.length)) : out;
    const old = this.#byKey.get(key);
    if (old) {
      this.#bytes -= sizeOf(old);
      this.#byKey.delete(key);
    }
    this.#byKey.set(key, kept);
    this.#bytes += sizeOf(kept);
    while (this.#byKey.size > MAX_KEYS || this.#bytes > MAX_BYTES) {
      const [oldestKey, oldest] = this.#byKey.entries().next().value as [string, Outcome];
      this.#byKey.delete(oldestKey);
      this.#bytes -= sizeOf(oldest);
    }
  }
}
