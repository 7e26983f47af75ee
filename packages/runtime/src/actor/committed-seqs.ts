import type { Clock } from '../clock.js';

/** Sequences one generation holds at most: a busy actor's generations turn over sooner. */
const MAX_PER_GENERATION = 1 << 16;

/**
 * The stream sequences of the durable messages an activation committed lately. An acknowledgement
 * sent while the actor's consumer changes leaders is lost (the old leader no longer reads it, the new
 * one has not started to), and the message comes again after ack_wait, by when a busy actor's record
 * may have forgotten its key (it keeps the last `durable.dedupKeys`).
 *
 * Two generations of sets of numbers, no object per message (a durable actor commits thousands a
 * second): a sequence is kept from one to two `generationMs`, or until MAX_PER_GENERATION newer ones
 * fill a generation.
 */
export class CommittedSeqs {
  #current = new Set<number>();
  #previous = new Set<number>();
  #since: number;

  constructor(
    private readonly clock: Clock,
    private readonly generationMs: number,
  ) {
    this.#since = clock.now();
  }

  add(seq: number): void {
    if (this.#current.size >= MAX_PER_GENERATION || this.clock.now() - this.#since >= this.generationMs) {
      this.#previous = this.#current;
      this.#current = new Set();
      this.#since = this.clock.now();
    }
    this.#current.add(seq);
  }

  has(seq: number): boolean {
    return this.#current.has(seq) || this.#previous.has(seq);
  }
}
