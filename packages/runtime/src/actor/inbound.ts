import type { Msg } from '@nats-io/transport-node';
import { decodeRequests } from '../wire/batch.js';
import { Assembler, HEADER_ROOM } from '../wire/chunks.js';
import { decode } from '../wire/codec.js';
import { type Envelope, envelopeOf, messagePrev, messageSeq, readMessageHeaders } from '../wire/envelope.js';
import type { WireLimits } from '../wire/publish.js';
import { checkWireVersion } from '../wire/version.js';
import type { AnyActorDefinition } from './definition.js';
import { checkMessage } from './messages.js';
import { inboxOf } from './reply-sender.js';

/** Where fast-mode messages go once read: queued, or answered as malformed. */
export interface InboundSink {
  accept(msg: { type: string }, env: Envelope, reply: string | undefined, inbox: string | undefined): void;
  bad(reply: string | undefined, err: unknown, inbox: string | undefined): void;
}

/**
 * Reads an actor's fast-mode messages off its subject: reassembles chunked ones, unpacks coalesced
 * batches, checks each message against the actor's handlers, and hands every item on exactly the way
 * a single message would go.
 */
export class FastInbound {
  readonly #def: AnyActorDefinition;
  readonly #actor: string;
  readonly #sink: InboundSink;
  readonly #assembler: Assembler;

  constructor(def: AnyActorDefinition, actor: string, sink: InboundSink, limits: WireLimits) {
    this.#def = def;
    this.#actor = actor;
    this.#sink = sink;
    this.#assembler = new Assembler({
      maxMessageBytes: limits.maxMessageBytes,
      partBytes: limits.maxPayload - HEADER_ROOM,
    });
  }

  receive(m: Msg): void {
    let data = m.data;
    const h = readMessageHeaders(m);
    if (h.chunk) {
      // Only the last part carries the envelope (sender, reply), so parts are not told apart by sender:
      // the Assembler's limits hold for this actor's subject as a whole.
      let whole: Uint8Array | undefined;
      try {
        whole = this.#assembler.add('', h.chunk, data);
      } catch (err) {
        this.#sink.bad(m.reply, err, undefined);
        return;
      }
      if (!whole) return;
      data = whole;
    }
    if (h.batch) {
      const seq = messageSeq(h.seq);
      const prev = seq === undefined ? undefined : messagePrev(h.prev, seq);
      this.#batch(m, data, h.sender || 'unknown', h.wire, seq, prev);
      return;
    }
    let msg: { type: string };
    try {
      checkWireVersion(h.wire);
      msg = checkMessage(this.#def, this.#actor, decode(data), true);
    } catch (err) {
      this.#sink.bad(m.reply, err, undefined);
      return;
    }
    this.#sink.accept(msg, envelopeOf(h), m.reply, undefined);
  }

  /** Unpacks coalesced asks/tells; each item then goes exactly the way a single message would. */
  #batch(
    m: Msg,
    data: Uint8Array,
    sender: string,
    wire: string | undefined,
    seq: number | undefined,
    prev: number | undefined,
  ): void {
    let items: ReturnType<typeof decodeRequests>;
    try {
      items = decodeRequests(data);
    } catch (err) {
      this.#sink.bad(m.reply, err, undefined);
      return;
    }
    const batchInbox = m.reply ? inboxOf(m.reply, undefined) : undefined;
    for (const [at, i] of items.entries()) {
      const inbox = i.reply ? inboxOf(i.reply, batchInbox) : undefined;
      let msg: { type: string };
      try {
        if (i.error) throw i.error;
        // The batch's header is every item's: a version this build does not read refuses each one.
        checkWireVersion(wire);
        msg = checkMessage(this.#def, this.#actor, i.message, true);
      } catch (err) {
        this.#sink.bad(i.reply, err, inbox);
        continue;
      }
      const env: Envelope = {
        traceparent: i.traceparent,
        sender,
        deadline: i.deadline,
        ...(i.key !== undefined ? { idempotencyKey: i.key } : {}),
        // One message, one count: its items keep their order among themselves.
        ...(seq !== undefined ? { seq } : {}),
        ...(prev !== undefined ? { prev } : {}),
        ...(at < items.length - 1 ? { more: true as const } : {}),
      };
      this.#sink.accept(msg, env, i.reply, inbox);
    }
  }
}
