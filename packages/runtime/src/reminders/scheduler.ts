import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { Clock, Timer } from '../clock.js';
import { BadMessage, RuntimeErrorCode, StitchError } from '../errors.js';
import type { Guard } from '../guard.js';
import type { LogFn } from '../log.js';
import { encodeReminder, nextDue, parseReminder, type ReminderRecord } from './record.js';

/** Reminders one node tracks at most (the bucket's byte bound comes first for any real message size). */
const MAX_TRACKED = 200_000;
/** A reminder whose ask failed (no node took it, a timeout) is tried again after 0.5 s, doubling to 30 s. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
/** Asks that did not reach a handler: the reminder is sent again. Anything else was delivered. */
const UNDELIVERED = new Set<string>([
  RuntimeErrorCode.Timeout,
  RuntimeErrorCode.NoResponders,
  RuntimeErrorCode.Overloaded,
  RuntimeErrorCode.ActorStopped,
  RuntimeErrorCode.NoNode,
  RuntimeErrorCode.MigrationFailed,
  RuntimeErrorCode.ClusterClosed,
]);

/** What a node's scheduler did, as `inspectNode(id).reminders` reports it. */
export interface ReminderCounts {
  /** Reminders in the bucket that this node follows (every node follows all of them). */
  tracked: number;
  /** Of those, the ones this node sends. */
  owned: number;
  /** Ticks asked and advanced since the node started. */
  fired: number;
  /** Asks that did not reach a handler and were tried again. */
  retried: number;
}

export interface SchedulerParts {
  remindersKv: KV;
  nodesKv: KV;
  nodeId: string;
  deadAfterMs: number;
  clock: Clock;
  guard: Guard;
  log: LogFn;
  /** Asks the reminder's actor with its message; resolves once a handler ran it (or refused it as bad). */
  send(r: ReminderRecord, idempotencyKey: string): Promise<unknown>;
}

/** Stands for a tracked reminder's message, which is read again when it fires. */
const NOT_KEPT = new Uint8Array(0);

interface Tracked {
  /** Without its message (NOT_KEPT): every node tracks every reminder, and messages go to 64 KiB. */
  record: ReminderRecord;
  revision: number;
  timer?: Timer;
  attempts: number;
  firing: boolean;
}

/**
 * Fires the reminders this node owns. Every node that runs one watches the whole reminders bucket and
 * the nodes bucket; a reminder is owned by the live node (of those that run a scheduler and do not
 * drain) that ranks highest for its key by rendezvous hashing, so owners change only for the keys of
 * a node that came or went. A due reminder is asked of its actor with the idempotency key
 * `reminder:<name>:<dueAt>`, and only once the ask succeeded is the record advanced (a periodic one)
 * or deleted, by compare-and-set on the revision the owner saw: a node that dies between the two, or
 * two nodes that both think they own the key while membership settles, send the same tick with the
 * same key, which the actor applies once (its key record); the compare-and-set lets one advance it.
 */
export class ReminderScheduler {
  readonly #p: SchedulerParts;
  readonly #tracked = new Map<string, Tracked>();
  /** Live scheduling nodes: when each was last seen to write its record. */
  readonly #nodes = new Map<string, number>();
  #owners: string[] = [];
  #watches: { stop(): void }[] = [];
  #sweep: Timer | undefined;
  #stopped = false;
  /** Keys this node owns now: kept as owners and entries change, so that counts() is cheap. */
  readonly #owned = new Set<string>();
  #fired = 0;
  #retried = 0;

  constructor(parts: SchedulerParts) {
    this.#p = parts;
  }

  async start(): Promise<void> {
    const { guard, nodesKv, remindersKv, clock, deadAfterMs } = this.#p;
    const nodes = await nodesKv.watch({ key: '>' });
    const reminders = await remindersKv.watch({ key: '>' });
    this.#watches = [nodes, reminders];
    void guard.each('reminders: nodes watch', nodes, (e) => this.#node(e));
    void guard.each('reminders watch', reminders, (e) => this.#reminder(e));
    // Nodes that stopped writing leave the owners without an event: look a few times per window.
    this.#sweep = clock.every(Math.max(50, Math.min(1000, deadAfterMs / 4)), () =>
      guard.run('reminders: owners', () => this.#rebalance()),
    );
    this.#rebalance();
  }

  stop(): void {
    this.#stopped = true;
    this.#sweep?.cancel();
    for (const w of this.#watches) w.stop();
    for (const t of this.#tracked.values()) t.timer?.cancel();
    this.#tracked.clear();
    this.#owned.clear();
  }

  counts(): ReminderCounts {
    return {
      tracked: this.#tracked.size,
      owned: this.#owned.size,
      fired: this.#fired,
      retried: this.#retried,
    };
  }

  #node(e: KvWatchEntry): void {
    if (e.operation !== 'PUT') {
      this.#nodes.delete(e.key);
    } else {
      let r: { reminders?: unknown; draining?: unknown } | null = null;
      try {
        r = e.json();
      } catch {
        // Not a node's record: it schedules nothing.
      }
      const now = this.#p.clock.now();
      const created = e.created.getTime();
      const at = e.isUpdate || !Number.isFinite(created) ? now : Math.min(now, created);
      if (
        r?.reminders === true &&
        r.draining !== true &&
        (this.#nodes.size < MAX_TRACKED || this.#nodes.has(e.key))
      )
        this.#nodes.set(e.key, at);
      else this.#nodes.delete(e.key);
    }
    this.#rebalance();
  }

  #reminder(e: KvWatchEntry): void {
    const known = this.#tracked.get(e.key);
    if (known && e.revision <= known.revision) return;
    const record = e.operation === 'PUT' ? parseReminder(e.key, e.value) : undefined;
    if (!record) {
      known?.timer?.cancel();
      this.#tracked.delete(e.key);
      this.#owned.delete(e.key);
      if (e.operation === 'PUT') throw new BadMessage(`reminders bucket: ${e.key} holds no reminder`);
      return;
    }
    // Thrown, not logged here: the guard counts every one and logs at a bounded rate.
    if (!known && this.#tracked.size >= MAX_TRACKED)
      throw new StitchError(
        RuntimeErrorCode.Overloaded,
        `this node follows ${MAX_TRACKED} reminders already; ${e.key} is not scheduled here (cancel unused reminders)`,
      );
    // One Tracked per key, updated in place: a firing under way sees the newer record when it ends.
    const kept = { ...record, message: NOT_KEPT };
    const t: Tracked = known ?? { record: kept, revision: e.revision, attempts: 0, firing: false };
    t.record = kept;
    t.revision = e.revision;
    t.attempts = 0;
    this.#tracked.set(e.key, t);
    if (!this.#owns(e.key)) return;
    this.#owned.add(e.key);
    if (!t.firing) this.#arm(e.key, t, record.dueAt - this.#p.clock.now());
  }

  /** Recomputes the owners when the set of live scheduling nodes changed; arms and disarms to match. */
  #rebalance(): void {
    if (this.#stopped) return;
    const now = this.#p.clock.now();
    const live = [this.#p.nodeId];
    for (const [id, at] of this.#nodes)
      if (id !== this.#p.nodeId && now - at <= this.#p.deadAfterMs) live.push(id);
    live.sort();
    if (live.join('\u0000') === this.#owners.join('\u0000')) return;
    this.#owners = live;
    this.#owned.clear();
    for (const [key, t] of this.#tracked) {
      if (!this.#owns(key)) {
        t.timer?.cancel();
        t.timer = undefined;
        continue;
      }
      this.#owned.add(key);
      if (!t.timer && !t.firing) this.#arm(key, t, t.record.dueAt - now);
    }
  }

  #owns(key: string): boolean {
    let best = '';
    let bestScore = -1;
    for (const id of this.#owners) {
      const score = rendezvous(id, key);
      if (score > bestScore) {
        best = id;
        bestScore = score;
      }
    }
    return best === this.#p.nodeId;
  }

  #arm(key: string, t: Tracked, inMs: number): void {
    t.timer?.cancel();
    t.timer = this.#p.clock.after(Math.max(0, inMs), () => {
      t.timer = undefined;
      this.#p.guard.run('reminder', () => this.#fire(key, t));
    });
  }

  async #fire(key: string, t: Tracked): Promise<void> {
    if (this.#stopped || this.#tracked.get(key) !== t || !this.#owns(key) || t.firing) return;
    t.firing = true;
    let retryInMs: number | undefined;
    try {
      retryInMs = await this.#deliver(key, t);
    } finally {
      t.firing = false;
    }
    // Armed for what the record says now: the watch may have brought a change during the firing.
    if (this.#stopped || this.#tracked.get(key) !== t || !this.#owns(key)) return;
    this.#arm(key, t, retryInMs ?? t.record.dueAt - this.#p.clock.now());
  }

  /** Asks the actor, then advances or deletes the entry; returns when to try again if that failed. */
  async #deliver(key: string, t: Tracked): Promise<number | undefined> {
    const { revision } = t;
    try {
      // The message, as of the revision this node saw; changed or gone since, the watch brings that.
      const e = await this.#p.remindersKv.get(key);
      const record =
        e?.revision === revision && e.operation === 'PUT' ? parseReminder(key, e.value) : undefined;
      if (!record) return undefined;
      try {
        await this.#p.send(record, `reminder:${record.name}:${record.dueAt}`);
      } catch (err) {
        if (err instanceof StitchError && UNDELIVERED.has(err.code)) throw err;
        // The handler ran and failed, or refused the message: the reminder was delivered.
        this.#p.log('warn', 'reminder handler failed', {
          key,
          error: (err as Error)?.message ?? String(err),
        });
      }
      if (record.periodMs === 0) {
        await this.#p.remindersKv.delete(key, { previousSeq: revision });
        if (t.revision === revision) {
          this.#tracked.delete(key);
          this.#owned.delete(key);
          t.timer?.cancel();
        }
      } else {
        const next = { ...record, dueAt: nextDue(record.dueAt, record.periodMs, this.#p.clock.now()) };
        const rev = await this.#p.remindersKv.update(key, encodeReminder(next), revision);
        // Scheduled now, not when the watch brings the write back (that entry is then ignored).
        if (t.revision < rev) {
          t.record = { ...next, message: NOT_KEPT };
          t.revision = rev;
        }
      }
      t.attempts = 0;
      this.#fired++;
      return undefined;
    } catch (err) {
      // Lost the compare-and-set, or the record changed meanwhile: the watch brought the newer one.
      if (t.revision !== revision) return undefined;
      const retryInMs = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** t.attempts++);
      this.#retried++;
      this.#p.log('warn', 'reminder not delivered; trying again', {
        key,
        retryInMs,
        error: (err as Error)?.message ?? String(err),
      });
      return retryInMs;
    }
  }
}

/** FNV-1a of `node \0 key`: each node's rank for a key, the same on every node. */
function rendezvous(node: string, key: string): number {
  let h = 0x811c9dc5;
  const s = `${node}\u0000${key}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // FNV's low bits mix poorly for keys that differ only at the end: finish like murmur3's fmix32.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
