// The coordinator's leader lease: one KV entry (`_leader` in the deployments bucket) holding the
// leader's name and its fencing epoch. The leader renews it by compare-and-set every tenth of a lease
// and stops acting half a lease after it sent its last successful renewal, whether or not an answer
// has come since (a renewal that hangs must not keep it acting); a standby that has seen no renewal
// for 70 % of a lease (by its own clock: no clock skew matters) takes it over by compare-and-set with
// epoch + 1, so exactly one wins, within one lease of the leader's last renewal. nats-server 2.9 has no
// per-key TTL, hence renewals judged by their revisions rather than an expiry time.
import type { KV } from '@nats-io/kv';

export const LEASE_KEY = '_leader';
/** A standby takes over once the lease has not changed for this share of it. */
const STALE_AFTER = 0.7;

interface LeaseRecord {
  /** Null once released by a leader that stopped: a standby takes over at once. */
  holder: string | null;
  epoch: number;
}

function parse(bytes: Uint8Array): LeaseRecord | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<LeaseRecord> | null;
    if (v && (typeof v.holder === 'string' || v.holder === null) && Number.isSafeInteger(v.epoch))
      return { holder: v.holder, epoch: v.epoch as number };
  } catch {
    // not a lease record: treated as absent, so a coordinator can repair it
  }
  return undefined;
}

const encode = (r: LeaseRecord) => JSON.stringify(r);

export interface LeaseEvents {
  /** This process now leads with `epoch` (every command it sends must carry it). */
  elected(epoch: number): void;
  /** This process lost the lease (another took it over, or it could not renew in time). */
  deposed(reason: string): void;
  log(line: string): void;
}

export class LeaderLease {
  #leading = false;
  #epoch = 0;
  #revision = 0;
  #holder: string | null = null;
  /**
   * When this process last saw the entry change (standby), or sent the write that last renewed or took
   * it (leader), ms.
   */
  #lastChange = 0;
  #seenRevision = -1;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking = false;
  #stopped = false;
  /** Woken whenever `leading` or `held` may have changed (a take, a renewal answered, a deposition, a stop). */
  readonly #waiters = new Set<() => void>();

  constructor(
    private readonly kv: KV,
    readonly name: string,
    readonly leaseMs: number,
    private readonly events: LeaseEvents,
  ) {}

  /** Leading, and within half a lease of the last renewal sent: a standby takes over after 70 %. */
  get leading(): boolean {
    return this.#leading && performance.now() - this.#lastChange < this.leaseMs / 2;
  }

  /**
   * Holds the lease: won it and was not deposed since, whether or not its last renewal was answered in
   * time. What a holder is asked to do meanwhile should wait for `untilActing`, not be dropped.
   */
  get held(): boolean {
    return this.#leading;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** The holder of the lease as last seen (this process when leading). */
  get holder(): string | null {
    return this.#leading ? this.name : this.#holder;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#lastChange = performance.now();
    await this.#tick();
    if (this.#stopped) return;
    this.#timer = setInterval(() => void this.#tick(), Math.max(20, Math.floor(this.leaseMs / 10)));
    this.#timer.unref();
  }

  /** Resolves once this process leads; false when `timeoutMs` passes first. */
  untilLeading(timeoutMs: number): Promise<boolean> {
    if (this.#leading) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve(v);
      };
      const wake = () => {
        if (this.#leading) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      this.#waiters.add(wake);
    });
  }

  /**
   * Resolves true once `leading` holds (at once, or when a late renewal is answered), false once this
   * process no longer holds the lease. A renewal slower than half a lease (a loaded host) makes a
   * leader unsure for a moment; an action it was about to take waits here rather than be lost.
   */
  untilActing(): Promise<boolean> {
    return new Promise((resolve) => {
      // Waits while it holds the lease unconfirmed; a stop or a deposition ends `held` too.
      const check = () => {
        if (this.#leading && !this.leading) return;
        this.#waiters.delete(check);
        resolve(this.leading);
      };
      this.#waiters.add(check);
      check();
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Stops renewing; a leader hands the lease back (holder null) so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    const held = this.#leading;
    this.#leading = false;
    this.#wake();
    if (!held) return;
    await this.kv
      .update(LEASE_KEY, encode({ holder: null, epoch: this.#epoch }), this.#revision)
      .catch(() => undefined);
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      if (!this.#leading) await this.#contend();
      // Sent by 0.2 of a lease (the ticks are a tenth apart), a renewal has 0.3 of a lease to be
      // answered before `leading` ends.
      else if (performance.now() - this.#lastChange >= this.leaseMs / 10) await this.#renew();
    } catch (err) {
      this.events.log(`leader lease: ${(err as Error).message}`);
    } finally {
      this.#ticking = false;
    }
  }

  async #renew(): Promise<void> {
    const sent = performance.now();
    try {
      this.#revision = await this.kv.update(
        LEASE_KEY,
        encode({ holder: this.name, epoch: this.#epoch }),
        this.#revision,
      );
      this.#lastChange = sent;
      this.#wake();
    } catch (err) {
      // A compare-and-set that fails means another coordinator took over; any other failure leaves us
      // unsure, and past half a lease a standby may soon take over: stop acting before it can.
      const lost = /wrong last sequence/i.test(String(err));
      if (lost || performance.now() - this.#lastChange > this.leaseMs / 2) {
        this.#leading = false;
        this.#wake();
        this.events.deposed(
          lost ? 'another coordinator took the lease over' : `could not renew: ${String(err)}`,
        );
      }
    }
  }

  async #contend(): Promise<void> {
    const e = await this.kv.get(LEASE_KEY);
    const now = performance.now();
    if (!e) return this.#take(() => this.kv.create(LEASE_KEY, encode({ holder: this.name, epoch: 1 })), 1);
    if (e.operation !== 'PUT') {
      // Deleted by hand: the epochs nodes saw are unknown, so start above any count of takeovers.
      const epoch = Date.now();
      return this.#take(
        () => this.kv.update(LEASE_KEY, encode({ holder: this.name, epoch }), e.revision),
        epoch,
      );
    }
    const record = parse(e.value) ?? { holder: null, epoch: Date.now() };
    this.#holder = record.holder;
    if (e.revision !== this.#seenRevision) {
      this.#seenRevision = e.revision;
      this.#lastChange = now;
      if (record.holder !== null && record.holder !== this.name) return;
    } else if (record.holder !== null && now - this.#lastChange <= this.leaseMs * STALE_AFTER) return;
    const epoch = record.epoch + 1;
    await this.#take(
      () => this.kv.update(LEASE_KEY, encode({ holder: this.name, epoch }), e.revision),
      epoch,
    );
  }

  async #take(write: () => Promise<number>, epoch: number): Promise<void> {
    const sent = performance.now();
    try {
      this.#revision = await write();
    } catch {
      return; // another coordinator won this round
    }
    if (this.#stopped) {
      // Stopped while the write was on its way: hand the lease back at once, as stop() would have.
      await this.kv.update(LEASE_KEY, encode({ holder: null, epoch }), this.#revision).catch(() => undefined);
      return;
    }
    this.#leading = true;
    this.#epoch = epoch;
    this.#lastChange = sent;
    this.events.elected(epoch);
    this.#wake();
  }
}
