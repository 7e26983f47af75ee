import { createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { Assembler } from './chunks.js';
import { decode } from './codec.js';
import { H, replyError } from './envelope.js';
import { NoResponders, Timeout } from './errors.js';

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  target: string;
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
    const token = reply.slice(this.#inbox.length + 1);
    clearTimeout(this.#pending.get(token)?.timer);
    this.#pending.delete(token);
  }

  rejectAll(err: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }

  #onReply(m: Msg): void {
    const token = m.subject.slice(this.#inbox.length + 1);
    const p = this.#pending.get(token);
    if (!p) return;
    let data = m.data;
    const h = m.headers;
    if (h) {
      if (h.code === 503) {
        this.#settle(token, p, new NoResponders(p.target));
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

  #settle(token: string, p: Pending, err: Error | undefined, value?: unknown): void {
    clearTimeout(p.timer);
    this.#pending.delete(token);
    if (err) p.reject(err);
    else p.resolve(value);
  }
}
