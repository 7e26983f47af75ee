import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Timer } from '../clock.js';
import type { PullInbox } from '../migration/protocol.js';
import { type DurableDelivery, pulledDelivery } from './durable-delivery.js';
import type { Host } from './host.js';

/** Messages the watched pull inboxes keep for the commit, at most, and their bytes (see watch). */
const MAX_WATCHED = 4096;
const MAX_WATCHED_BYTES = 16 * 1024 * 1024;

/** A pull inbox taken over (or watched) and how long it is read. */
interface TakenPull {
  inbox: string;
  sub: Subscription;
  /** Read for this long from the move's release, until `until` once it came. */
  keepMs: number;
  until?: number;
  timer?: Timer;
  /** When it was subscribed to. */
  since: number;
  /** Subscribed to at `begin`, not handed over yet (see watch). */
  watched: boolean;
}

interface Watched {
  at: number;
  bytes: number;
  read: () => void;
}

/**
 * The pull inboxes a migration's target reads for its actor's durable consumer: a pull cannot be
 * cancelled on nats-server 2.9, and the consumer's leader answers the source's pulls on the source's
 * inboxes until they expire (see DurableInbox.holdPulls). Watched from `begin` on a cluster, taken at
 * the commit, read for their time after the move's release.
 */
export class TakenPulls {
  #taken: TakenPull[] = [];
  /** Where what comes on them goes once taken; undefined while they are only watched. */
  #deliver: ((m: DurableDelivery) => void) | undefined;
  /** What the watched inboxes brought in the last #keepMs, oldest first (see watch). */
  #watched: Watched[] = [];
  #watchedBytes = 0;
  /** What the watch kept for the commit, read once its committed runs are known (readKept). */
  #kept: Watched[] = [];
  #keepMs = 0;

  constructor(
    private readonly host: Pick<Host, 'nc' | 'names' | 'guard' | 'clock'>,
    private readonly actor: string,
    /** Whether a stream sequence is known committed (see DurableInbox.committed). */
    private readonly committed: (seq: number) => boolean,
    /** Called for each message handed on, before it is. */
    private readonly counted: () => void,
  ) {}

  /** The inboxes taken over with time left to read them, and how much (see DurableInbox.pullInboxes). */
  remaining(): PullInbox[] {
    const now = this.host.clock.now();
    const out: PullInbox[] = [];
    for (const t of this.#taken) {
      const keepMs = t.until === undefined ? t.keepMs : t.until - now;
      if (keepMs > 0) out.push({ inbox: t.inbox, keepMs });
    }
    return out;
  }

  /**
   * A migration's target at `begin`, on a cluster: subscribes to the source's pull inboxes ahead of
   * the commit (see take), so that its interest reaches the consumer's leader while the state is
   * copied; resolves once its server has it. What comes there is the source's too, which reads it until
   * at least the commit's answer and forwards what it did not run; the last `keepMs` of it (the grace
   * period: a route may bring the source its copy later) is kept for the commit, the rest dropped.
   */
  async watch(type: string, id: string, pulls: PullInbox[], keepMs: number): Promise<void> {
    this.#keepMs = keepMs;
    this.#read(type, id, pulls, true);
    await this.host.nc.flush();
  }

  /** The migration ended without a commit that took the pulls watched (see watch). */
  unwatch(): void {
    this.#takeWatched();
    for (const t of this.#taken.filter((x) => x.watched)) this.#unsubscribe(t);
  }

  /**
   * A migration's target, before the directory moves: reads the pull inboxes its source handed over
   * (see DurableInbox.holdPulls) as its own, and resolves once the server has the interest, with the
   * time from which it has read all of them (those watched since `begin`: from then); each is read for
   * its `keepMs` from the move's release (keep). What comes there before the release is held by the
   * activation (its source has those it got first, and forwards them).
   */
  async take(
    type: string,
    id: string,
    pulls: PullInbox[],
    deliver: (m: DurableDelivery) => void,
  ): Promise<number> {
    // Watched, not handed over: their pulls have expired by now.
    for (const t of this.#taken.filter((x) => x.watched && !pulls.some((p) => p.inbox === x.inbox)))
      this.#unsubscribe(t);
    this.#deliver = deliver;
    const keptFrom = this.host.clock.now() - this.#keepMs;
    this.#kept = this.#takeWatched().filter((w) => w.at >= keptFrom);
    // Those watched since `begin` were flushed then.
    if (this.#read(type, id, pulls, false)) await this.host.nc.flush();
    let since = Number.NEGATIVE_INFINITY;
    for (const t of this.#taken) if (pulls.some((p) => p.inbox === t.inbox)) since = Math.max(since, t.since);
    return since;
  }

  /** What the watch kept for the commit, now that what the source committed is known (see take). */
  readKept(): void {
    for (const w of this.#kept.splice(0))
      this.host.guard.run('durable pull inbox', w.read, { actor: this.actor });
  }

  /** The move's release: each pull inbox taken over is read for its `keepMs` from now (see take). */
  keep(): void {
    const { clock } = this.host;
    for (const t of this.#taken) {
      if (t.until !== undefined) continue;
      t.until = clock.now() + t.keepMs;
      t.timer = clock.after(t.keepMs, () => this.#unsubscribe(t));
    }
  }

  /** Stops reading every pull inbox taken over or watched. */
  drop(): void {
    this.#deliver = undefined;
    this.#takeWatched();
    this.#kept = [];
    for (const t of [...this.#taken]) this.#unsubscribe(t);
  }

  /** Subscribes to the pull inboxes not read yet; `watched`: ahead of the commit. Whether it subscribed to any. */
  #read(type: string, id: string, pulls: PullInbox[], watched: boolean): boolean {
    const { nc, names, guard, clock } = this.host;
    const stream = names.stream;
    const consumer = names.consumer(type, id);
    const subject = names.durable(type, id);
    const read = (m: Msg, kept = false) => {
      const d = pulledDelivery(nc, m, stream, consumer, subject);
      if (!d || !this.#deliver) return;
      // Kept from before the commit: what the source committed is its to acknowledge.
      if (kept && this.committed(d.seq)) return;
      this.counted();
      this.#deliver(d);
    };
    const callback = guard.callback('durable pull inbox', (m: Msg) => {
      if (this.#deliver) {
        read(m);
        return;
      }
      // Only what the server delivered from the actor's stream: a client may publish to the inbox too.
      if (m.subject !== subject) return;
      const at = clock.now();
      const w = this.#watched;
      w.push({ at, bytes: m.data.length, read: () => read(m, true) });
      this.#watchedBytes += m.data.length;
      while (
        w.length > MAX_WATCHED ||
        this.#watchedBytes > MAX_WATCHED_BYTES ||
        (w.length > 0 && w[0]!.at < at - this.#keepMs)
      )
        this.#watchedBytes -= w.shift()!.bytes;
    });
    let subscribed = false;
    for (const { inbox, keepMs } of pulls) {
      const t = this.#taken.find((x) => x.inbox === inbox);
      if (t) {
        if (!watched && t.watched) Object.assign(t, { watched: false, keepMs });
        continue;
      }
      subscribed = true;
      this.#taken.push({
        inbox,
        sub: nc.subscribe(inbox, { callback }),
        keepMs,
        since: clock.now(),
        watched,
      });
    }
    return subscribed;
  }

  /** What the watched inboxes kept; none from now. */
  #takeWatched(): Watched[] {
    this.#watchedBytes = 0;
    return this.#watched.splice(0);
  }

  #unsubscribe(t: TakenPull): void {
    this.#taken = this.#taken.filter((x) => x !== t);
    t.timer?.cancel();
    this.host.guard.run('durable pull inbox', () => t.sub.unsubscribe(), { actor: this.actor });
  }
}
