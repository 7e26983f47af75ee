import {
  AckPolicy,
  type Consumer,
  type ConsumerInfo,
  type ConsumerMessages,
  DeliverPolicy,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { sleep, type Timer } from '../clock.js';
import { MAX_PULL_INBOXES, type PullInbox, pullsUnder } from '../migration/protocol.js';
import { ackDirect, pullInboxOf, withInboxPrefix } from '../wire/nats-internals.js';
import type { Outcome } from '../wire/outcome.js';
import { CommittedSeqs, mergeRuns, seqRuns } from './committed-seqs.js';
import type { DurableDelivery } from './durable-delivery.js';
import type { Host } from './host.js';
import type { ReplySender } from './reply-sender.js';
import type { StateRecord } from './state.js';
import { TakenPulls } from './taken-pulls.js';

/** How long the messages of a commit that failed wait before they are delivered again. */
const RETRY_FAILED_COMMIT_MS = 1000;

/**
 * After a pull nothing answered (no-responders), the consumer is read again this soon (made where
 * missing), doubling up to a second.
 */
const REPULL_MS = 20;
/**
 * A consumer's leader election is checked (see #repullOnNewLeader) no sooner than this after its pull
 * started, when a fresh consumer's election (a migration's target makes it afresh) has settled, nor
 * sooner after the last check (a flood of advisories asks the server no more than once a second).
 */
const SETTLE_MS = 1000;
/**
 * After a leader change that found a pull waiting at the new leader: how often, and how many times,
 * this activation checks whether that pull is its own (see #repullOnNewLeader).
 */
const RECHECK_MS = 1000;
const RECHECKS = 4;
/** Beyond ack_wait, how long a committed message's sequence is remembered: a consumer's leader election. */
const LEADER_ELECTION_MS = 10_000;
/**
 * While commits are listed as unconfirmed (see UnconfirmedCommits), the consumer's ack floor is read
 * again this often at most: an actor whose keys leave its record within a few reads (a thousand kept,
 * thousands of messages a second) lists few.
 */
const FLOOR_READ_MS = 100;

/** How much longer than a pull can last a migration's target reads its inbox (see holdPulls). */
const PULL_KEEP_SLACK_MS = 1000;

/** The stream sequence at or below which a consumer has every message acknowledged. */
const ackFloorOf = (info: ConsumerInfo) => info.ack_floor?.stream_seq ?? 0;

/** How long a committed message's stream sequence is known (see CommittedSeqs, UnconfirmedCommits). */
export function committedKeptMs(ackWaitMs: number): number {
  return ackWaitMs + LEADER_ELECTION_MS;
}
/** Durable messages applied before a commit is forced. */
const COMMIT_BATCH = 64;
/** Callers waiting for one key's outcome, and keys waited for, at most. */
const WAITERS_PER_KEY = 64;
const WAITED_KEYS = 1024;
/** Longer keys are not waited for: an idempotency key from a header is far shorter. */
const WAITED_KEY_CHARS = 1024;
/**
 * How long a key is waited for at most, past its askers' deadlines: the stream's duplicate window,
 * after which a publish of the key is a new message rather than a duplicate to ask about.
 */
const WAIT_MS = 120_000;

/** What `create` does with a consumer that exists (see there). */
export type ConsumerStart = 'reuse' | 'fresh' | 'adopt';

interface Applied {
  m: DurableDelivery;
  reply: string | undefined;
  out: Outcome;
  /** The idempotency key the message was sent with (not the stream sequence used in its place). */
  key: string | undefined;
  /** Found in the record (applied before): no outcome of its own holds its stream sequence. */
  repeat?: boolean;
}

/**
 * An activation's durable inbox: its JetStream consumer, and the group commit of what it applied.
 * One KV write records the snapshot and the idempotency keys of every message applied since the last
 * one; only then are replies sent and messages acked. A crash before the write loses the effects and
 * the messages are redelivered; a crash after it finds the keys and skips them. A write may also hold
 * the effects and keys of messages applied after its batch was taken (turns go on during a commit):
 * those are answered after the next write, which holds them too.
 */
export class DurableInbox {
  /** Durable messages queued but not yet started: a commit waits until this is 0 (or the batch is full). */
  queued = 0;
  #uncommitted: Applied[] = [];
  #commits: Promise<void> = Promise.resolve();
  /** A commit is chained but has not taken its batch yet: whatever is applied meanwhile joins it. */
  #commitWaiting = false;
  /** Roll-backs so far: a commit that spans one may hold a snapshot without its batch's effects. */
  #rollBacks = 0;
  /**
   * Reply subjects waiting for the outcome of a durable key that is not applied yet, or not committed,
   * until the last of their askers' deadlines: a key that never commits (its message was dropped as bad,
   * or never sent) leaves after it.
   */
  readonly #waiters = new Map<string, { replies: string[]; until: number }>();
  /**
   * Keys whose effect is applied (the record's kept outcomes have them) but no commit holding it has
   * succeeded yet: their outcome is not an answer until then.
   */
  readonly #uncommittedKeys = new Set<string>();
  #consumer: ConsumerMessages | undefined;
  /** Consumers this inbox closed itself (the others nats.js stopped: see #restartWhenStopped). */
  readonly #closedHere = new WeakSet<ConsumerMessages>();
  #keepAlive: Timer | undefined;
  /** Stops watching the consumer's leader elections (see #repullOnNewLeader). */
  #unwatch: (() => void) | undefined;
  /** Pulls in a row that nothing answered. */
  #unanswered = 0;
  #repulls = 0;
  /** Messages the consumer handed this activation: a re-check sees whether any came. */
  #delivered = 0;
  /** The highest ack floor a consumer of this actor had when create found it (see committed). */
  #ackFloor = 0;
  readonly #committedSeqs: CommittedSeqs;
  /** Closes so far: a consumer being made or read when one came is left alone (see consume). */
  #closes = 0;
  /** The consumer's name parts, once create has run (see #readFloor). */
  #named: { type: string; id: string } | undefined;
  /** The ack floor the last read found (see #readFloor), when it started, and whether one runs. */
  #lastFloor = 0;
  #floorReadAt = Number.NEGATIVE_INFINITY;
  #floorReading = false;
  #floorReads = 0;
  /** A migration's source, paused: its pulls are being handed over (see holdPulls). */
  #holding = false;
  /** A pull started again that waits for the hold's end (the move failed) to run. */
  #heldRestart: (() => Promise<void>) | undefined;
  /** Pull inboxes taken over from migrations' sources, or watched ahead of a commit (a move's target). */
  readonly pulls: TakenPulls;

  constructor(
    private readonly host: Host,
    private readonly actor: string,
    private readonly record: StateRecord,
    private readonly replies: ReplySender,
    private readonly superseded: () => void,
    ackWaitMs: number,
  ) {
    this.#committedSeqs = new CommittedSeqs(host.clock, committedKeptMs(ackWaitMs));
    this.pulls = new TakenPulls(
      host,
      actor,
      (seq) => this.committed(seq),
      () => void this.#delivered++,
    );
  }

  /**
   * Records an applied message; commits when nothing else durable is queued or the batch is full.
   * Turns go on while a commit is in flight: what they apply meanwhile goes into the next commit.
   */
  applied(a: Applied): void {
    this.#uncommitted.push(a);
    if (a.key !== undefined) this.#uncommittedKeys.add(a.key);
    if (this.queued === 0 || this.#uncommitted.length >= COMMIT_BATCH) this.#commit();
  }

  /**
   * Creates the actor's durable consumer where missing; resolves with its info, or undefined when the
   * server would not say (one with another config exists: consume() reads it). At most `capacity`
   * messages are unacknowledged at once. `start` says what becomes of an existing one: `reuse` it;
   * make it `fresh` (a migration's target); `adopt` it from an activation that is gone, made afresh
   * when that one left messages unacknowledged.
   */
  async create(
    type: string,
    id: string,
    ackWaitMs: number,
    capacity: number,
    start: ConsumerStart = 'reuse',
  ): Promise<ConsumerInfo | undefined> {
    const { jsm, names } = this.host;
    const name = names.consumer(type, id);
    this.#named = { type, id };
    const closes = this.#closes;
    const existing = await this.#consumerInfo(type, id);
    // Closed meanwhile (moved on before its consumer was made): the actor's next owner makes it.
    if (closes !== this.#closes) return undefined;
    if (existing && (start === 'reuse' || (start === 'adopt' && existing.num_ack_pending === 0))) {
      return existing;
    }
    // Messages the server had sent to an earlier reader's pull, which it never acknowledged (it stopped
    // reading, or died), would wait out ack_wait. A new consumer on the work-queue stream starts from
    // every message not acknowledged yet; one applied but not acked is found in the record, and one
    // at or below the floor read above is skipped (see committed).
    if (existing || start === 'fresh') await jsm.consumers.delete(names.stream, name).catch(() => undefined);
    return jsm.consumers
      .add(names.stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: names.durable(type, id),
        ack_wait: nanos(ackWaitMs),
        max_ack_pending: capacity,
      })
      .catch(() => undefined);
  }

  /** Reads the consumer `created` made (see create) and hands each message to `deliver`. */
  async consume(
    type: string,
    id: string,
    ackWaitMs: number,
    capacity: number,
    deliver: (m: DurableDelivery) => void,
    created: Promise<ConsumerInfo | undefined>,
    expiresMs: number,
    /** Makes the consumer where missing and consumes it again. */
    restart: () => Promise<void>,
  ): Promise<void> {
    const { js, names } = this.host;
    const subject = names.durable(type, id);
    // A close while the consumer is made (a move away from an actor that had just arrived, before
    // its consumer was ready) leaves it unread: read anyway, it would pull from the next owner's
    // consumer for good, and give back all it got.
    const closes = this.#closes;
    const info = await created;
    if (closes !== this.#closes) return;
    // The info the creation answered with saves asking for it again.
    const consumer = info
      ? js.consumers.getConsumerFromInfo(info)
      : await js.consumers.get(names.stream, names.consumer(type, id));
    if (closes !== this.#closes) return;
    const consume = () =>
      consumer.consume({
        max_messages: Math.max(1, Math.min(capacity, 256)),
        expires: expiresMs,
        // Handed over as they arrive, not through an async iterator a turn of the event loop later: in
        // order with those of the pull inboxes taken over from a migration's source, which a plain
        // subscription reads (see TakenPulls). One that cannot be handled is reported and skipped (its
        // redelivery is the server's); nothing escapes, or nats.js would stop the consumer.
        callback: (m) => {
          if (closes !== this.#closes) return;
          // A client may publish to the inbox too (without an auth config): the server delivers the
          // stream's messages under the subject they were published to (see pulledDelivery).
          if (m.subject !== subject) return;
          this.#unanswered = 0;
          this.#delivered++;
          try {
            deliver(m);
          } catch (err) {
            this.host.guard.report('durable consumer', err, { actor: this.actor });
          }
        },
      });
    const { pullPrefix } = this.host;
    const messages = await (pullPrefix ? withInboxPrefix(this.host.nc, pullPrefix, consume) : consume());
    if (closes !== this.#closes) {
      await this.#close(messages);
      return;
    }
    this.#consumer = messages;
    void this.#repullWhenUnanswered(messages, restart);
    void this.#restartWhenStopped(messages, restart);
    this.#unwatch?.();
    let since = this.host.clock.now();
    let check: Timer | undefined;
    const unwatch = this.host.watchConsumerLeader(names.consumer(type, id), () => {
      // One check at a time, SETTLE_MS after the pull started or the last check: put off, not dropped,
      // as a leader elected just after a re-pull (the consumer's groups re-elect as a partition heals)
      // may have lost that pull too.
      if (check) return;
      check = this.host.clock.after(Math.max(0, since + SETTLE_MS - this.host.clock.now()), () => {
        check = undefined;
        since = this.host.clock.now();
        this.host.guard.run('durable consumer', () => this.#repullOnNewLeader(messages, consumer, restart), {
          actor: this.actor,
        });
      });
    });
    this.#unwatch = () => {
      unwatch();
      check?.cancel();
    };
    // A long turn keeps its unacknowledged messages from being redelivered meanwhile.
    this.#keepAlive = this.host.clock.every(ackWaitMs / 3, () => {
      for (const u of this.#uncommitted) u.m.working();
    });
  }

  /**
   * A pull that no server answered (a consumer just made on a cluster, whose leader's interest has not
   * reached this server yet) leaves nats.js waiting for missed heartbeats, seconds: read it again soon
   * instead. Stops with the consumer (close, or a later consume).
   */
  async #repullWhenUnanswered(messages: ConsumerMessages, restart: () => Promise<void>): Promise<void> {
    for await (const s of messages.status()) {
      if (this.#consumer !== messages) return;
      if (s.type !== 'no_responders') continue;
      if (this.#holding) {
        this.#heldRestart = restart;
        continue;
      }
      this.#keepAlive?.cancel();
      await this.#close(messages);
      await sleep(this.host.clock, this.#repullDelayMs());
      if (this.#consumer !== messages) return;
      this.host.guard.run('durable consumer', restart, { actor: this.actor });
      return;
    }
  }

  /**
   * nats.js stops reading a consumer on some statuses (a 400, a 409 such as "Consumer Deleted"), which
   * a client may also forge on the pull inbox where no auth config forbids it (one forged 400 left a
   * durable actor unanswered for over a minute): reads it again, made where missing.
   */
  async #restartWhenStopped(messages: ConsumerMessages, restart: () => Promise<void>): Promise<void> {
    const stopped = await messages.closed().catch((err: unknown) => err);
    if (this.#consumer !== messages || this.#closedHere.has(messages)) return;
    this.host.guard.report('durable consumer', stopped ?? new Error('the consumer stopped'), {
      actor: this.actor,
    });
    this.#keepAlive?.cancel();
    await sleep(this.host.clock, this.#repullDelayMs());
    if (this.#consumer !== messages) return;
    if (this.#holding) {
      this.#heldRestart = restart;
      return;
    }
    this.host.guard.run('durable consumer', restart, { actor: this.actor });
  }

  /** How long to wait before reading the consumer again: longer with each pull in a row nothing answered. */
  #repullDelayMs(): number {
    const n = this.#unanswered++;
    return Math.min(1000, REPULL_MS * 2 ** Math.min(n, 6));
  }

  #close(messages: ConsumerMessages): Promise<unknown> {
    this.#closedHere.add(messages);
    return messages.close().catch(() => undefined);
  }

  /**
   * The consumer got a new leader (its server stopped or stepped down): a pull that waited on the old
   * one is lost, and nats.js would notice only after two missed heartbeats. Asks the new leader
   * whether a pull waits there, and pulls again when none does: re-pulling while its own pull waits
   * could drop what the server is sending it. The pull waiting may be another reader's, though: after
   * a partition heals, the activation the cut-off node still runs pulls from the same consumer until
   * its next commit finds itself superseded, and then its pull goes with it while this one's stays
   * lost (seen in the chaos suite's partition runs: 10 s without an answer). So while the consumer
   * holds messages and none reaches this activation, it asks again every RECHECK_MS.
   */
  async #repullOnNewLeader(
    messages: ConsumerMessages,
    consumer: Consumer,
    restart: () => Promise<void>,
  ): Promise<void> {
    // What was delivered here by the last look (what came before may have been the old leader's).
    let delivered = this.#delivered;
    for (let check = 0; ; check++) {
      if (this.#consumer !== messages) return;
      const info = await consumer.info(false).catch(() => undefined);
      if (this.#consumer !== messages) return;
      // No pull waits there: this one's is lost.
      if (!info || info.num_waiting === 0) break;
      if (check > 0) {
        // Messages came since the last look: the pull waiting is this one's.
        if (this.#delivered !== delivered) return;
        // Messages are there to deliver, yet none came: it is another reader's. (A consumer with
        // nothing to deliver says nothing either way.)
        if (info.num_pending > 0) break;
      }
      if (check === RECHECKS) return;
      delivered = this.#delivered;
      await sleep(this.host.clock, RECHECK_MS);
    }
    // Pulling afresh now would change the inbox a move is handing over: after it, if it fails.
    if (this.#holding) {
      this.#heldRestart = restart;
      return;
    }
    this.#repulls++;
    this.#keepAlive?.cancel();
    await this.#close(messages);
    if (this.#consumer !== messages) return;
    await restart();
  }

  /**
   * Whether the message at stream sequence `seq` is one whose effect is committed already, known by
   * its sequence (its key may have left the record's kept outcomes): committed lately by this
   * activation (see CommittedSeqs), listed by the record (see UnconfirmedCommits: what an activation
   * before this one committed, on a node since dead), or at or below the highest ack floor a read of
   * this actor's consumer found (create's, a move's, #readFloor's). Everything there was acknowledged
   * after its commit, yet a copy may come again: on nats-server 2.9 a replica of a work-queue stream
   * drops an acknowledged message when its replica of the consumer applies the ack, and a consumer
   * deleted first (a migration's target makes it afresh) leaves that replica with the message for
   * good; a later consumer led from there delivers it again. (A work-queue consumer must deliver all:
   * it cannot start past the floor.)
   */
  committed(seq: number): boolean {
    return seq <= this.#ackFloor || this.#committedSeqs.has(seq) || this.record.unconfirmed.has(seq);
  }

  /**
   * For a move of this actor, from its `begin`: reads the consumer's ack floor and what this
   * activation committed above it; the function it resolves with, called at the pause, adds what was
   * committed since and gives them all as runs `[first, count]`. A message committed here whose
   * acknowledgement was lost is still unacknowledged in the consumer the target makes afresh, which
   * delivers it at once: the target knows it by these (see adoptCommitted).
   */
  async committedForMove(type: string, id: string): Promise<() => [number, number][]> {
    if (!(await this.#consumerInfo(type, id))) return () => [];
    const floor = this.#ackFloor;
    const mark = this.#committedSeqs.mark();
    // Sorted now, while the pre-copy runs; the pause sorts only what was committed since.
    const before = seqRuns(this.#committedSeqs.above(floor));
    return () => mergeRuns(before, seqRuns(this.#committedSeqs.above(floor, mark)));
  }

  /** The actor's consumer as its leader has it (undefined: missing, or no answer); raises #ackFloor. */
  async #consumerInfo(type: string, id: string): Promise<ConsumerInfo | undefined> {
    const { jsm, names } = this.host;
    const info = await jsm.consumers.info(names.stream, names.consumer(type, id)).catch(() => undefined);
    if (info) this.#ackFloor = Math.max(this.#ackFloor, ackFloorOf(info));
    return info;
  }

  /**
   * Reads the consumer's ack floor, at most every FLOOR_READ_MS, and confirms the unconfirmed commits
   * at or below the floor the read before found: a leader's floor may hold acknowledgements it has not
   * replicated yet, which a next leader would not have; by the next read they are replicated, or the
   * leader changed and that read's floor, if lower, is the one taken.
   */
  #readFloor(): void {
    const named = this.#named;
    const now = this.host.clock.now();
    if (!named || this.#floorReading || now - this.#floorReadAt < FLOOR_READ_MS) return;
    this.#floorReading = true;
    this.#floorReadAt = now;
    this.#floorReads++;
    void this.#consumerInfo(named.type, named.id)
      .then((info) => {
        if (!info) return;
        const floor = ackFloorOf(info);
        this.record.unconfirmed.confirm(Math.min(floor, this.#lastFloor));
        this.#lastFloor = floor;
      })
      .finally(() => {
        this.#floorReading = false;
      });
  }

  /** What a move's source committed (see committedForMove): known here as if committed here. */
  adoptCommitted(runs: [number, number][]): void {
    for (const [first, count] of runs) for (let i = 0; i < count; i++) this.#committedSeqs.add(first + i);
    this.pulls.readKept();
  }

  /** Reads of the consumer's ack floor that confirm unconfirmed commits (see #readFloor). */
  get floorReads(): number {
    return this.#floorReads;
  }

  /** Pulls started again after the consumer's leader changed (see #repullOnNewLeader). */
  get repulls(): number {
    return this.#repulls;
  }

  /**
   * The inboxes the consumer's pulls may still be answered on: its own, whose pulls last `expiresMs` at
   * most from their start, and those it took over, for what is left of their time. Undefined when no
   * pull runs (or it cannot be read: nats.js's fast path off) or there are more than a commit hands over.
   */
  pullInboxes(expiresMs: number): PullInbox[] | undefined {
    const own = pullInboxOf(this.#consumer);
    if (!own) return undefined;
    const pulls = [{ inbox: own, keepMs: expiresMs + PULL_KEEP_SLACK_MS }, ...this.pulls.remaining()];
    return pulls.length > MAX_PULL_INBOXES ? undefined : pulls;
  }

  /**
   * A migration's source, paused: pulls no more afresh (what its pulls bring still comes, and queues
   * for the target) and gives the inboxes its consumer's pulls may still be answered on (pullInboxes)
   * for the target to read (see TakenPulls.take): a pull cannot be cancelled, and what the server sends it as
   * the source leaves is otherwise lost until ack_wait. Undefined (nothing held) when they cannot be
   * handed over: see pullInboxes, or an inbox is not under `prefix` (those the target may read).
   */
  holdPulls(prefix: string, expiresMs: number): PullInbox[] | undefined {
    const pulls = this.pullInboxes(expiresMs);
    if (!pulls || !pullsUnder(pulls, prefix)) return undefined;
    this.#holding = true;
    return pulls;
  }

  /**
   * The move failed: the consumer is this activation's again (see holdPulls), and a pull put off
   * meanwhile starts now, the one it replaces and its keep-alive stopped first (some of what put it
   * off leave them running).
   */
  releasePulls(): void {
    this.#holding = false;
    const restart = this.#heldRestart;
    this.#heldRestart = undefined;
    if (!restart) return;
    this.#keepAlive?.cancel();
    const replaced = this.#consumer;
    this.host.guard.run(
      'durable consumer',
      async () => {
        if (replaced) await this.#close(replaced);
        await restart();
      },
      { actor: this.actor },
    );
  }

  /** Acknowledges a message: its effect is committed, the stream may drop it. */
  ack(m: DurableDelivery): void {
    if (!ackDirect(this.host.nc, m)) m.ack();
  }

  /** Stops taking durable messages; the unacknowledged ones go to the next activation. */
  async close(): Promise<void> {
    this.#closes++;
    this.#holding = false;
    this.#heldRestart = undefined;
    this.pulls.drop();
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#keepAlive?.cancel();
    const consumer = this.#consumer;
    this.#consumer = undefined;
    if (consumer) await this.#close(consumer);
  }

  /**
   * A crash rolled the state back to its last snapshot: what was applied and not taken into a commit
   * goes back to the stream (a key the snapshot holds is found in the record when it comes again).
   */
  rollBack(): void {
    this.#rollBacks++;
    for (const u of this.#uncommitted.splice(0)) this.#step(() => u.m.nak());
  }

  /** Commits what is applied now, whatever is still queued; resolves once it is written. */
  flush(): Promise<void> {
    if (this.#uncommitted.length > 0) this.#commit();
    return this.#commits;
  }

  /** Resolves once every commit started so far has finished. */
  settled(): Promise<void> {
    return this.#commits;
  }

  /**
   * Answers a durable ask whose publish the stream dropped as a duplicate: from the effect record when
   * the key is applied and committed, else once a commit holding it succeeds (a durable answer is never
   * given for an effect a crash could still lose).
   */
  outcome(key: string, reply: string, inbox: string | undefined, deadline: number): void {
    const done = this.#uncommittedKeys.has(key) ? undefined : this.record.outcome(key);
    if (done) {
      this.replies.send(reply, done, inbox);
      return;
    }
    const now = this.host.clock.now();
    const until = Math.min(deadline, now + WAIT_MS);
    const waiting = this.#waiters.get(key);
    if (waiting) {
      if (waiting.replies.length < WAITERS_PER_KEY) waiting.replies.push(reply);
      waiting.until = Math.max(waiting.until, until);
      return;
    }
    if (key.length > WAITED_KEY_CHARS) return;
    if (this.#waiters.size >= WAITED_KEYS)
      for (const [k, w] of this.#waiters) if (w.until < now) this.#waiters.delete(k);
    if (this.#waiters.size < WAITED_KEYS) this.#waiters.set(key, { replies: [reply], until });
  }

  /**
   * Chains one commit after the previous ones. The chain never rejects and every step is guarded: a
   * reply, ack or nak that throws loses that step only, never the commits after it.
   */
  #commit(): void {
    if (this.#commitWaiting) return;
    this.#commitWaiting = true;
    // At the end of this turn of the event loop, so that every message already read from the socket
    // (delivered one microtask apart) joins the batch: one write and one flush for all of them.
    const turnEnds = new Promise<void>((resolve) => setImmediate(resolve));
    this.#commits = Promise.all([this.#commits, turnEnds])
      .then(() => {
        this.#commitWaiting = false;
        return this.#commitBatch();
      })
      .catch((err) => this.#report(err));
  }

  async #commitBatch(): Promise<void> {
    const batch = this.#uncommitted;
    if (batch.length === 0) return;
    this.#uncommitted = [];
    const rollBacks = this.#rollBacks;
    try {
      await this.record.save();
      if (this.#rollBacks !== rollBacks) {
        // Whether the write took its snapshot before or after the roll-back, a message sent back is
        // found in the record if its effect was kept, and applied again if not.
        for (const u of batch) this.#step(() => u.m.nak());
        return;
      }
    } catch (err) {
      this.host.log('error', 'could not persist state; messages will be redelivered', {
        actor: this.actor,
        error: String(err),
      });
      // Superseded: the newer activation takes them now. Otherwise (no leader, a timeout) they come
      // back after a second rather than at once into the same failure.
      const delay = this.record.superseded ? undefined : RETRY_FAILED_COMMIT_MS;
      for (const u of batch) this.#step(() => u.m.nak(delay));
      if (this.record.superseded) this.#step(() => this.superseded());
      return;
    }
    const repeats: number[] = [];
    for (const u of batch) {
      this.#committedSeqs.add(u.m.seq);
      if (u.repeat) repeats.push(u.m.seq);
      if (u.reply) this.#answer(u.reply, u.out);
      this.#step(() => this.ack(u.m));
      if (!u.key) continue;
      this.#uncommittedKeys.delete(u.key);
      for (const w of this.#waiters.get(u.key)?.replies ?? []) this.#answer(w, u.out);
      this.#waiters.delete(u.key);
    }
    this.record.unconfirmed.add(seqRuns(repeats));
    if (this.record.unconfirmed.pending) this.#readFloor();
  }

  /** A committed answer: sent, and kept to be sent again if the connection breaks (RecentReplies). */
  #answer(reply: string, out: Outcome): void {
    this.#step(() => this.replies.send(reply, out));
    this.host.durableReplies?.note(this.replies, reply, out);
  }

  #step(fn: () => unknown): void {
    this.host.guard.run('durable commit', fn, { actor: this.actor });
  }

  #report(err: unknown): void {
    this.host.guard.report('durable commit', err, { actor: this.actor });
  }
}
