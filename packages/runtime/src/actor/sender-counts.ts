import { MAX_SENDER_COUNTS } from '../migration/protocol.js';
import type { Envelope } from '../wire/envelope.js';

/**
 * Per sender, the count (Stitch-Seq) of the last of its fast-mode messages this actor ran. A migration
 * hands them to the target, which runs at once a message that follows one of them (Stitch-Prev).
 * Bounded: past MAX_SENDER_COUNTS the sender noted first is forgotten, and its next message after a
 * move waits for the hand-off's end, as a message without a Stitch-Prev does.
 */
export class SenderCounts {
  readonly #last = new Map<string, { n: number }>();

  /** A turn starts on a message; one lookup, no Map write for a known sender. */
  ran(env: Envelope): void {
    if (env.seq !== undefined) this.#note(env.sender, upTo(env));
  }

  /** A migration's target takes the source's counts; what it runs itself comes after them. */
  adopt(counts: Iterable<readonly [string, number]>): void {
    for (const [sender, n] of counts) this.#note(sender, n);
  }

  #note(sender: string, seq: number): void {
    if (seq <= 0) return;
    const known = this.#last.get(sender);
    if (known) {
      if (seq > known.n) known.n = seq;
      return;
    }
    if (this.#last.size >= MAX_SENDER_COUNTS) this.#last.delete(this.#last.keys().next().value!);
    this.#last.set(sender, { n: seq });
  }

  /**
   * The counts a paused source hands over. A sender with messages still queued here (they go on to the
   * target) counts up to the one before the first of them: the items of a coalesced batch share one
   * count, and the batch's first may have run while the rest wait.
   */
  handOver(queued: Iterable<Envelope>): [string, number][] {
    const firstQueued = new Map<string, number>();
    for (const env of queued) {
      if (env.seq === undefined) continue;
      const first = firstQueued.get(env.sender);
      if (first === undefined || env.seq < first) firstQueued.set(env.sender, env.seq);
    }
    const out: [string, number][] = [];
    for (const [sender, { n }] of this.#last) {
      const first = firstQueued.get(sender);
      const done = first === undefined ? n : Math.min(n, first - 1);
      if (done > 0) out.push([sender, done]);
    }
    return out;
  }
}

/**
 * The count up to which a sender's messages are done once `env`'s is: its own, but for an item of a
 * coalesced message with more items after it (they share the count).
 */
export function upTo(env: Envelope): number {
  return env.more ? env.seq! - 1 : env.seq!;
}
