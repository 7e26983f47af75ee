import { headers as natsHeaders } from '@nats-io/transport-node';
import { encodeReplies, type ReplyItem, replyBytes } from '../wire/batch.js';
import { HEADER_ROOM } from '../wire/chunks.js';
import { Coalescer } from '../wire/coalesce.js';
import { H } from '../wire/envelope.js';
import { failure, type Outcome } from '../wire/outcome.js';
import { OutgoingHeaders } from '../wire/outgoing-headers.js';
import { publish, publishOne } from '../wire/publish.js';
import type { Host } from './host.js';

interface OutgoingReply extends ReplyItem {
  bytes: number;
}

/**
 * The caller inbox a reply subject belongs to (the subject without its last token); `likely` (the
 * batch's own inbox) is returned as the same string when it matches, so coalescing hashes it once.
 */
export function inboxOf(reply: string, likely: string | undefined): string {
  const n = likely?.length ?? 0;
  if (
    likely !== undefined &&
    reply.charCodeAt(n) === 46 &&
    reply.startsWith(likely) &&
    reply.indexOf('.', n + 1) === -1
  )
    return likely;
  return reply.slice(0, reply.lastIndexOf('.'));
}

/** Sends an activation's replies; replies to batched callers sharing an inbox go out together at the end of the tick. */
export class ReplySender {
  readonly #host: Host;
  readonly #actor: string;
  readonly #batched: Coalescer<OutgoingReply>;

  constructor(host: Host, actor: string) {
    this.#host = host;
    this.#actor = actor;
    this.#batched = new Coalescer(host.limits.maxPayload - HEADER_ROOM, (_inbox, items) =>
      this.#sendBatch(items),
    );
  }

  /** Answers `subject`; with `inbox` (the caller sent a batch) the reply waits for the end of the tick. */
  send(subject: string, out: Outcome, inbox?: string): void {
    if (inbox === undefined) {
      this.#publish(subject, out);
      return;
    }
    const item: OutgoingReply = { reply: subject, out, bytes: 0 };
    item.bytes = replyBytes(item);
    this.#batched.add(inbox, item);
  }

  #sendBatch(items: OutgoingReply[]): void {
    try {
      if (items.length === 1) {
        this.#publish(items[0]!.reply, items[0]!.out);
        return;
      }
      const h = new OutgoingHeaders();
      h.set(H.batch, String(items.length));
      publishOne(this.#host.nc, items[0]!.reply, encodeReplies(items), { headers: h });
    } catch (err) {
      // The connection is closing or gone; the callers time out as they would for a lost reply.
      this.#host.log('warn', 'could not send replies', { actor: this.#actor, error: String(err) });
    }
  }

  #publish(subject: string, out: Outcome): void {
    const nc = this.#host.nc;
    try {
      if (out.ok) {
        try {
          publish(nc, subject, out.data, {}, this.#host.limits);
          return;
        } catch (err) {
          out = failure(err);
        }
      }
      if (out.ok) return;
      const h = natsHeaders();
      h.set(H.errorCode, out.code);
      h.set(H.errorName, out.name);
      nc.publish(subject, Buffer.from(out.message), { headers: h });
    } catch (err) {
      // A reply subject nats.js refuses (a foreign client's) or a closed connection: the caller times out.
      this.#host.log('warn', 'could not send a reply', { actor: this.#actor, error: String(err) });
    }
  }
}
