import { MAX_SENDER_COUNTS } from '../migration/protocol.js';
import type { Envelope } from '../wire/envelope.js';
import { upTo } from './sender-counts.js';

/** Senders whose counts a target learns while it holds, at most, besides those the commit named. */
const MAX_SENDERS_LEARNED = 4 * MAX_SENDER_COUNTS;

/**
 * A migration's target, from its commit to the release. A message that reaches it while an earlier
 * one of the same sender may still be on its way from the source is held; the release queues what is
 * left in each sender's order (Stitch-Seq). A message whose sender's previous message to this actor
 * (Stitch-Prev) is known to have run or been queued — run by the source before it paused (the commit's
 * `ran`), or queued here since — is queued at once, and so are the held ones that follow it: a caller
 * that waits for each answer then waits for no step of the hand-off after the commit.
 */
export class HeldMessages<T extends { env: Envelope }> {
  readonly #held: T[] = [];
  /** Per sender, the count up to which every one of its messages here has run or been queued. */
  readonly #known: Map<string, number>;
  readonly #queue: (item: T) => void;

  constructor(ran: Iterable<readonly [string, number]>, queue: (item: T) => void) {
    this.#known = new Map(ran);
    this.#queue = queue;
  }

  get size(): number {
    return this.#held.length;
  }

  /** Whether `item` can be queued now: its sender's previous message to this actor has run or is queued. */
  follows(item: T): boolean {
    const { prev, sender } = item.env;
    if (prev === undefined) return false;
    // Its sender's first message to this actor: nothing of it can still be at the source.
    if (prev === 0) return true;
    const known = this.#known.get(sender);
    return known !== undefined && prev <= known;
  }

  hold(item: T): void {
    this.#held.push(item);
  }

  /** `item` was queued (or answered): its sender's held messages that follow it are queued too. */
  passed(item: T): void {
    if (item.env.seq !== undefined) this.#advance(item.env.sender, upTo(item.env));
  }

  /**
   * Queues the held messages of `sender` counted below `seq`, before a forwarded message counted `seq`
   * (one server: they reached this side before the source received that one, so every earlier message
   * of the sender has then run or is queued, and `passed` of the forwarded one says so).
   */
  before(sender: string, seq: number): void {
    const earlier = this.#take((i) => i.env.sender === sender && i.env.seq !== undefined && i.env.seq < seq);
    for (const item of inSenderOrder(earlier)) this.#queue(item);
  }

  /** Everything held, in each sender's order; nothing is held afterwards. */
  release(): T[] {
    return inSenderOrder(this.#take(() => true));
  }

  #advance(sender: string, done: number): void {
    let known = Math.max(this.#known.get(sender) ?? 0, done);
    while (this.#held.length > 0) {
      const next = this.#take(
        (i) => i.env.sender === sender && i.env.prev !== undefined && i.env.prev <= known,
      );
      for (const item of inSenderOrder(next)) {
        this.#queue(item);
        known = Math.max(known, upTo(item.env));
      }
      if (next.length === 0) break;
    }
    if (this.#known.has(sender) || this.#known.size < MAX_SENDER_COUNTS + MAX_SENDERS_LEARNED)
      this.#known.set(sender, known);
  }

  /** Removes and returns the held messages `pick` chooses, in the order they came. */
  #take(pick: (item: T) => boolean): T[] {
    const taken: T[] = [];
    let kept = 0;
    for (const item of this.#held) {
      if (pick(item)) taken.push(item);
      else this.#held[kept++] = item;
    }
    this.#held.length = kept;
    return taken;
  }
}

/**
 * Messages grouped by sender, each sender's in the order of its counts. On a cluster of servers they
 * can arrive out of it: a message the callers' server routed to the source's server just after the
 * source unsubscribed is sent on from there, behind later ones that came directly. Messages without a
 * count (older senders) keep the order they came in.
 */
function inSenderOrder<T extends { env: Envelope }>(items: T[]): T[] {
  if (items.length < 2) return items;
  const bySender = new Map<string, T[]>();
  for (const item of items) {
    const list = bySender.get(item.env.sender);
    if (list) list.push(item);
    else bySender.set(item.env.sender, [item]);
  }
  const out: T[] = [];
  for (const list of bySender.values()) {
    if (list.every((i) => i.env.seq !== undefined)) list.sort((x, y) => x.env.seq! - y.env.seq!);
    out.push(...list);
  }
  return out;
}
