import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { ActorRefData } from '../actor/ref-data.js';
import type { Clock } from '../clock.js';
import { bucketKeys } from '../cluster/bucket-keys.js';
import { checkToken, type Names } from '../cluster/names.js';
import { ClusterNotInitialized } from '../errors.js';
import {
  encodeReminder,
  parseReminder,
  type ReminderInfo,
  type ReminderOptions,
  reminderKey,
  reminderRecord,
} from './record.js';

/** Sets, cancels and lists reminders in the cluster's bucket; what Cluster and a turn's context call. */
export class ReminderStore {
  readonly #kv: KV | undefined;
  readonly #jsm: JetStreamManager;
  readonly #names: Names;
  readonly #cluster: string;
  readonly #clock: Clock;

  constructor(kv: KV | undefined, jsm: JetStreamManager, names: Names, cluster: string, clock: Clock) {
    this.#kv = kv;
    this.#jsm = jsm;
    this.#names = names;
    this.#cluster = cluster;
    this.#clock = clock;
  }

  #bucket(): KV {
    if (!this.#kv) throw new ClusterNotInitialized(this.#cluster, `bucket ${this.#names.remindersBucket}`);
    return this.#kv;
  }

  /** Stores the reminder, replacing one of the same name: it is next due `dueMs` from now. */
  async set(ref: ActorRefData, name: string, options: ReminderOptions): Promise<void> {
    const record = reminderRecord(ref, name, options, this.#clock.now());
    await this.#bucket().put(reminderKey(ref, name), encodeReminder(record));
  }

  /** Removes the reminder; one that is not there is no error. A firing under way still completes. */
  async cancel(ref: ActorRefData, name: string): Promise<void> {
    checkToken('reminder name', name);
    await this.#bucket().delete(reminderKey(ref, name));
  }

  /** The actor's reminders, by name. */
  async list(ref: ActorRefData): Promise<ReminderInfo[]> {
    const kv = this.#bucket();
    const under = `${checkToken('actor type', ref.type)}.${checkToken('actor id', ref.id)}`;
    const keys = await bucketKeys(this.#jsm, this.#names.remindersBucket, under);
    const entries = await Promise.all(keys.map((k) => kv.get(k).catch(() => null)));
    const out: ReminderInfo[] = [];
    for (const e of entries) {
      const r = e?.operation === 'PUT' ? parseReminder(e.key, e.value) : undefined;
      if (r) out.push({ name: r.name, dueAt: r.dueAt, periodMs: r.periodMs, mode: r.mode });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
