import type { Clock } from '../clock.js';
import { ownBytes } from '../wire/codec.js';
import type { Outcome } from '../wire/outcome.js';

/**
 * How long a durable answer is kept to be sent again after a reconnect: the longest a broken
 * connection goes unnoticed (three missed pings, one a second) with a margin.
 */
const REPLAY_MS = 5000;
/** Answers kept at most, and their bytes: a burst keeps the latest. */
const MAX_REPLIES = 10_000;
const MAX_BYTES = 16 * 1024 * 1024;

interface Sent {
  at: number;
  sender: { send(subject: string, out: Outcome): void };
  subject: string;
  out: Outcome;
  bytes: number;
}

/**
 * The durable answers a node sent lately. Core NATS is at most once: an answer written to the socket
 * as the connection broke is gone with it, and its caller would wait out its timeout. Once the
 * connection is back the node sends the answers of the last REPLAY_MS again; a caller that has its
 * answer already ignores the repeat.
 */
export class RecentReplies {
  readonly #clock: Clock;
  /** Oldest first; those before #head are dropped (compacted once they are half the array). */
  #sent: Sent[] = [];
  #head = 0;
  #bytes = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#sent.length - this.#head;
  }

  note(sender: Sent['sender'], subject: string, reply: Outcome): void {
    // Counted by its own bytes, and holding only those.
    const out: Outcome = reply.ok ? { ok: true, data: ownBytes(reply.data) } : reply;
    const bytes = subject.length + (out.ok ? out.data.length : out.message.length);
    this.#sent.push({ at: this.#clock.now(), sender, subject, out, bytes });
    this.#bytes += bytes;
    this.#trim();
  }

  /** Sends every answer of the last REPLAY_MS again, oldest first; returns how many. */
  replay(): number {
    this.#trim();
    const sent = this.#sent.slice(this.#head);
    for (const s of sent) s.sender.send(s.subject, s.out);
    return sent.length;
  }

  #trim(): void {
    const from = this.#clock.now() - REPLAY_MS;
    while (this.#head < this.#sent.length) {
      const s = this.#sent[this.#head]!;
      if (s.at >= from && this.size <= MAX_REPLIES && this.#bytes <= MAX_BYTES) break;
      this.#bytes -= s.bytes;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#sent.length) {
      this.#sent = this.#sent.slice(this.#head);
      this.#head = 0;
    }
  }
}
