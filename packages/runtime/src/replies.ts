import { createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { decodeReplies } from './batch.js';
import { Assembler } from './chunks.js';
import { decode } from './codec.js';
import { H, replyError } from './envelope.js';
import { NoResponders, rebuildError, Timeout } from './errors.js';

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  target: string;
  /** Tokens of the other asks sent in the same batch, kept on the token the batch was sent with. */
  mates?: string[];
}

/**
 * One wildcard inbox subscription per connection; each request gets `<inbox>.<token>` as its reply
 * subject. Unlike nats.js `request()`, a reply may arrive in several chunks, and error replies are
 * rebuilt as typed errors from their headers.
 */
export class Replies {
  readonly #inbox = createInbox();
  readonly #pending = new Map<string, Pending>();
  readonly #assembler = new Assembler();
  #seq = 0;

  constructor(nc: NatsConnection) {
    nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, m) => {
        if (!err) this.#onReply(m);
      },
    });
  }

  /** Calls `send` with a fresh reply subject and resolves with the decoded reply. */
  wait(target: string, timeoutMs: number, send: (reply: string) => void): Promise<unknown> {
    const token = (this.#seq++).toString(36);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(token);
        reject(new Timeout(target, timeoutMs));
      }, timeoutMs);
      this.#pending.set(token, { resolve, reject, timer, target });
      try {
        send(`${this.#inbox}.${token}`);
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(token);
        reject(err);
      }
    });
  }

  /** Stops waiting on `reply` (its promise is abandoned, never settled). */
  forget(reply: string): void {
    const token = this.#token(reply);
    clearTimeout(this.#pending.get(token)?.timer);
    this.#pending.delete(token);
  }

  /** Rejects the ask waiting on `reply` (its send failed after `wait` returned). */
  fail(reply: string, err: Error): void {
    const token = this.#token(reply);
    const p = this.#pending.get(token);
    if (p) this.#settle(token, p, err);
  }

  /**
   * Records that `replies` went out as one message with reply subject `replies[0]`: a no-responders
   * status on it is the answer to every ask in the batch.
   */
  group(replies: string[]): void {
    const p = this.#pending.get(this.#token(replies[0]!));
    if (p) p.mates = replies.slice(1).map((r) => this.#token(r));
  }

  rejectAll(err: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }

  #token(reply: string): string {
    return reply.slice(this.#inbox.length + 1);
  }

  #onReply(m: Msg): void {
    const h = m.headers;
    if (h?.get(H.batch)) {
      this.#onBatch(m.data);
      return;
    }
    const token = this.#token(m.subject);
    const p = this.#pending.get(token);
    if (!p) return;
    let data = m.data;
    if (h) {
      if (h.code === 503) {
        this.#settle(token, p, new NoResponders(p.target));
        for (const mate of p.mates ?? []) {
          const q = this.#pending.get(mate);
          if (q) this.#settle(mate, q, new NoResponders(q.target));
        }
        return;
      }
      const chunk = h.get(H.chunk);
      if (chunk) {
        const whole = this.#assembler.add(token, chunk, data);
        if (!whole) return;
        data = whole;
      }
      const err = replyError(h, data);
      if (err) {
        this.#settle(token, p, err);
        return;
      }
    }
    try {
      this.#settle(token, p, undefined, decode(data));
    } catch (err) {
      this.#settle(token, p, err as Error);
    }
  }

  /** A coalesced reply: each item settles its own ask, with its value or its typed error. */
  #onBatch(data: Uint8Array): void {
    let items: ReturnType<typeof decodeReplies>;
    try {
      items = decodeReplies(data);
    } catch {
      return; // not from a stitch actor; the asks it might have answered time out
    }
    for (const { reply, out } of items) {
      const token = this.#token(reply);
      const p = this.#pending.get(token);
      if (!p) continue;
      if (!out.ok) {
        this.#settle(token, p, rebuildError(out.code, out.name, out.message));
        continue;
      }
      try {
        this.#settle(token, p, undefined, decode(out.data));
      } catch (err) {
        this.#settle(token, p, err as Error);
      }
    }
  }

  #settle(token: string, p: Pending, err: Error | undefined, value?: unknown): void {
    clearTimeout(p.timer);
    this.#pending.delete(token);
    if (err) p.reject(err);
    else p.resolve(value);
  }
}
