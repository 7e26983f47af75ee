import type { ForwardedMessage } from '../migration/protocol.js';
import { decode } from '../wire/codec.js';
import { envelopeOf, readHeaders, readMessageHeaders, validReplySubject } from '../wire/envelope.js';
import { coreMsg } from '../wire/nats-internals.js';
import { checkWireVersion } from '../wire/version.js';
import type { AnyActorDefinition } from './definition.js';
import { consumerDelivery, type DurableDelivery } from './durable-delivery.js';
import type { DurableInbox } from './durable-inbox.js';
import type { Host } from './host.js';
import { type Incoming, incomingOf } from './incoming.js';
import type { Mailbox } from './mailbox.js';
import { checkMessage } from './messages.js';

/** What the intake needs of its activation. */
export interface DurableIntakeOwner {
  readonly host: Host;
  readonly def: AnyActorDefinition;
  readonly id: string;
  readonly key: string;
  /** Stopped: what is read now belongs to the next owner. */
  stopped(): boolean;
  /** Answers a message that is not one of the actor's (and reports it). */
  bad(reply: string | undefined, err: unknown): void;
}

/**
 * The durable messages one activation takes in: from its consumer, and from a migration's source with
 * their acknowledgement subjects. A migration's target that took over its source's pulls holds them
 * until the release, one per stream sequence (both sides may have read one), and then queues them in
 * stream order. What a commit already holds is acknowledged and skipped.
 */
export class DurableIntake {
  readonly counters = { delivered: 0, redelivered: 0, duplicatesSkipped: 0 };
  readonly #owner: DurableIntakeOwner;
  readonly #inbox: DurableInbox;
  readonly #mailbox: Mailbox<Incoming>;
  /** Held by stream sequence until a migration's release (see hold). */
  #held: Map<number, Incoming> | undefined;

  constructor(owner: DurableIntakeOwner, inbox: DurableInbox, mailbox: Mailbox<Incoming>) {
    this.#owner = owner;
    this.#inbox = inbox;
    this.#mailbox = mailbox;
  }

  /** A migration's target that takes over its source's pulls: holds what comes until the release. */
  hold(): void {
    this.#held ??= new Map();
  }

  get holding(): boolean {
    return this.#held !== undefined;
  }

  /** The commit failed: nothing is held any more (the pulls taken over go back to the source alone). */
  dropHeld(): void {
    this.#held = undefined;
  }

  /** One delivery of the actor's consumer (or of a pull inbox taken over). */
  delivered(m: DurableDelivery): void {
    if (this.#owner.stopped()) {
      // Read after a migration closed the consumer: the next owner gets it.
      this.returnToStream(m);
      return;
    }
    this.counters.delivered++;
    if (m.redelivered) this.counters.redelivered++;
    if (this.#inbox.committed(m.seq)) {
      this.skipCommitted(m);
      return;
    }
    const core = coreMsg(m);
    const h = core ? readMessageHeaders(core) : readHeaders(m.headers);
    const env = envelopeOf(h);
    // A header-borne reply subject is whatever the publisher wrote: one that is not a subject means no reply.
    const reply = validReplySubject(h.replyTo);
    let msg: { type: string };
    try {
      checkWireVersion(h.wire);
      msg = checkMessage(this.#owner.def, this.#owner.key, decode(m.data));
    } catch (err) {
      this.#owner.bad(reply, err);
      m.term();
      return;
    }
    const key = env.idempotencyKey ?? `seq-${m.seq}`;
    this.#queue({ msg, env, reply, durable: m, key, inbox: undefined });
  }

  /** A durable message a migration's source forwarded with its acknowledgement subject `j`. */
  forwarded(f: ForwardedMessage, j: string): void {
    const m = this.delivery(j);
    if (!m) return;
    if (this.#inbox.committed(m.seq)) {
      this.skipCommitted(m);
      return;
    }
    let item: Incoming;
    try {
      item = incomingOf(this.#owner.def, this.#owner.key, f);
    } catch (err) {
      this.#owner.bad(f.r, err);
      m.term();
      return;
    }
    this.#queue({ ...item, durable: m, key: f.k ?? `seq-${m.seq}` });
  }

  /** This actor's durable message that acknowledgement subject `j` names (see consumerDelivery). */
  delivery(j: string): DurableDelivery | undefined {
    const { host, def, id } = this.#owner;
    return consumerDelivery(host.nc, j, host.names.stream, host.names.consumer(def.type, id));
  }

  /** Gives a durable message back to the stream unrun, for whoever consumes it next. */
  returnToStream(m: DurableDelivery): void {
    this.#owner.host.guard.run('durable nak', () => m.nak(), { actor: this.#owner.key });
  }

  /** Delivered again after its commit (see DurableInbox.committed): its effect is in the state. */
  skipCommitted(m: DurableDelivery): void {
    this.counters.duplicatesSkipped++;
    this.#inbox.ack(m);
  }

  /**
   * A migration's release: queues what was held, in stream order, and what comes from now on as it
   * comes; the pull inboxes taken over are read for their time from now (see TakenPulls.keep).
   */
  release(): void {
    if (!this.#held) return;
    const held = this.takeHeld();
    this.#held = undefined;
    this.#inbox.pulls.keep();
    for (const item of held) {
      // Held since before the commit's committed runs were known (see Activation.open).
      if (this.#inbox.committed(item.durable!.seq)) this.skipCommitted(item.durable!);
      else this.#queue(item);
    }
  }

  /** What is held for a release, in stream order; what comes next is held afresh. */
  takeHeld(): Incoming[] {
    const held = this.#held;
    if (!held) return [];
    this.#held = new Map();
    return [...held.keys()].sort((x, y) => x - y).map((seq) => held.get(seq)!);
  }

  /** The durable messages not run: those queued, then those held for a release. */
  takeUnrun(): Incoming[] {
    const queued = this.#mailbox.removeWhere((i) => i.durable !== undefined);
    this.#inbox.queued -= queued.length;
    return [...queued, ...this.takeHeld()];
  }

  #queue(item: Incoming): void {
    const held = this.#held;
    if (!held) {
      // Durable messages bypass the limits: the consumer's max_ack_pending already bounds them.
      this.#inbox.queued++;
      this.#mailbox.offer(item, '$durable', true);
      return;
    }
    const seq = item.durable!.seq;
    // Two copies of what the consumer may have outstanding, at most; one not held comes again after ack_wait.
    if (!held.has(seq) && held.size < 2 * this.#mailbox.capacity) held.set(seq, item);
  }
}
