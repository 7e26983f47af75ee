import { createInbox, type Msg } from '@nats-io/transport-node';
import { type Clock, DeadlineSweep } from '../clock.js';
import { NoResponders, rebuildError, Timeout } from '../errors.js';
import { decodeReplies } from '../wire/batch.js';
import { Assembler, HEADER_ROOM } from '../wire/chunks.js';
import { decode } from '../wire/codec.js';
import { H, replyError } from '../wire/envelope.js';
import { subjectBytes } from '../wire/nats-internals.js';
import type { ClusterParts } from './parts.js';
import { PendingTable } from './pending-table.js';

/** One ask waiting for its reply. */
export class Pending {
  resolve!: (value: unknown) => void;
  reject!: (err: Error) => void;
  readonly promise: Promise<unknown>;
  /** The asks sent in the same batch, kept on the one whose reply subject the batch carried. */
  mates: Pending[] | undefined;
  /** Directory key of the actor asked, when the ask went to an actor. */
  actorKey: string | undefined;

  constructor(
    readonly seq: number,
    readonly reply: string,
    readonly target: string,
    readonly timeoutMs: number,
    readonly deadline: number,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/**
 * One wildcard inbox subscription per connection; each request gets `<inbox>.<token>` as its reply
 * subject. Unlike nats.js `request()`, a reply may arrive in several chunks or inside a batch, and
 * error replies are rebuilt as typed errors. One timer serves every ask: it fires at the earliest
 * deadline and sweeps, so an ask costs no timer of its own.
 */
export class Replies {
  readonly #inbox: string;
  readonly #pending = new PendingTable<Pending>();
  readonly #assembler: Assembler;
  readonly #clock: Clock;
  readonly #onNoResponders: (p: Pending) => void;
  readonly #deadlines: DeadlineSweep<Pending>;
  #seq = 0;

  /** `onNoResponders` hears of each ask the server answered with no-responders (nothing subscribed). */
  constructor(
    parts: Pick<ClusterParts, 'nc' | 'clock' | 'guard' | 'limits' | 'inboxPrefix'>,
    onNoResponders: (p: Pending) => void,
  ) {
    // The connection's own prefix (connectCluster's inboxPrefix), so the server's permissions apply.
    this.#inbox = createInbox(parts.inboxPrefix);
    this.#clock = parts.clock;
    this.#onNoResponders = onNoResponders;
    this.#deadlines = new DeadlineSweep(
      parts.clock,
      () => this.#pending.values(),
      (p) => {
        this.#pending.delete(p);
        p.reject(new Timeout(p.target, p.timeoutMs));
      },
    );
    this.#assembler = new Assembler({
      maxMessageBytes: parts.limits.maxMessageBytes,
      partBytes: parts.limits.maxPayload - HEADER_ROOM,
    });
    parts.nc.subscribe(`${this.#inbox}.*`, {
      callback: parts.guard.callback('caller inbox', (m: Msg) => this.#onReply(m)),
    });
  }

  /** A fresh reply subject and the ask waiting on it; rejects with Timeout after `timeoutMs`. */
  create(target: string, timeoutMs: number): Pending {
    const seq = this.#seq++;
    const deadline = this.#clock.now() + timeoutMs;
    const p = new Pending(seq, `${this.#inbox}.${seq.toString(36)}`, target, timeoutMs, deadline);
    this.#pending.add(p);
    this.#deadlines.added(deadline);
    return p;
  }

  /** Calls `send` with a fresh reply subject and resolves with the decoded reply. */
  wait(target: string, timeoutMs: number, send: (reply: string) => void): Promise<unknown> {
    const p = this.create(target, timeoutMs);
    try {
      send(p.reply);
    } catch (err) {
      this.fail(p, err as Error);
    }
    return p.promise;
  }

  /** Stops waiting for `p` (its promise is abandoned, never settled). */
  forget(p: Pending): void {
    this.#pending.delete(p);
  }

  /** Rejects `p` (its send failed after it was created), unless it is settled already. */
  fail(p: Pending, err: Error): void {
    this.#settle(p, err);
  }

  /**
   * Records that `asks` went out as one message with the reply subject of `asks[0]`: a no-responders
   * status on it is the answer to every ask in the batch.
   */
  group(asks: Pending[]): void {
    asks[0]!.mates = asks;
  }

  rejectAll(err: Error): void {
    this.#deadlines.cancel();
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #token(reply: string): string {
    return reply.slice(this.#inbox.length + 1);
  }

  #seqOf(reply: string): number {
    return Number.parseInt(this.#token(reply), 36);
  }

  /** The sequence number a reply is addressed to, parsed from the subject bytes when nats.js has them. */
  #seqOfReply(m: Msg): number {
    const bytes = subjectBytes(m);
    if (!bytes) return this.#seqOf(m.subject);
    let seq = 0;
    for (let i = this.#inbox.length + 1; i < bytes.length; i++) {
      const c = bytes[i]!;
      const digit = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 122 ? c - 87 : -1;
      if (digit === -1) return -1;
      seq = seq * 36 + digit;
    }
    return seq;
  }

  #onReply(m: Msg): void {
    const h = m.headers;
    if (h?.get(H.batch)) {
      this.#onBatch(m.data);
      return;
    }
    const p = this.#pending.get(this.#seqOfReply(m));
    if (!p) return;
    let data = m.data;
    if (h) {
      if (h.code === 503) {
        for (const q of p.mates ?? [p]) {
          if (this.#settle(q, new NoResponders(q.target))) this.#onNoResponders(q);
        }
        return;
      }
      const chunk = h.get(H.chunk);
      if (chunk) {
        let whole: Uint8Array | undefined;
        try {
          whole = this.#assembler.add(this.#token(m.subject), chunk, data);
        } catch (err) {
          this.#settle(p, err as Error); // a reply past the limits fails its ask
          return;
        }
        if (!whole) return;
        data = whole;
      }
      const err = replyError(h, data);
      if (err) {
        this.#settle(p, err);
        return;
      }
    }
    try {
      this.#settle(p, undefined, decode(data));
    } catch (err) {
      this.#settle(p, err as Error);
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
    for (const item of items) {
      const p = this.#pending.get(this.#seqOf(item.reply));
      if (!p) continue;
      if (item.ok) this.#settle(p, undefined, item.value);
      else this.#settle(p, rebuildError(item.error.code, item.error.name, item.error.message));
    }
  }

  /** Settles `p` once; a later answer for it (a batch mate, a duplicate reply) is ignored. */
  #settle(p: Pending, err: Error | undefined, value?: unknown): boolean {
    if (!this.#pending.delete(p)) return false;
    if (err) p.reject(err);
    else p.resolve(value);
    return true;
  }
}
