import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Clock } from '../clock.js';
import type { Directory } from '../cluster/directory.js';
import type { Names } from '../cluster/names.js';
import type { Guard } from '../guard.js';
import type { LogFn } from '../log.js';
import type { DeviceSlots, Slots } from '../node/slots.js';
import type { ReminderStore } from '../reminders/store.js';
import type { WireLimits } from '../wire/publish.js';
import type { ActorRef, ActorRefData } from './definition.js';
import type { RecentReplies } from './recent-replies.js';

/** What an activation needs from the node hosting it. */
export interface Host {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly names: Names;
  readonly nodeId: string;
  readonly stateKv: KV;
  readonly directory: Directory;
  readonly limits: WireLimits;
  readonly log: LogFn;
  readonly guard: Guard;
  readonly clock: Clock;
  /**
   * Prefix of the connection's inboxes (ClusterParts.inboxPrefix). When absent, an activation reads it
   * from nats.js's connection options on the fast path, and writes its state with `kv.update` otherwise.
   */
  readonly inboxPrefix?: string;
  /**
   * Prefix the durable consumers' pulls use for their inboxes (Names.pulls) when this connection may
   * subscribe there; undefined: nats.js's own, under inboxPrefix.
   */
  readonly pullPrefix?: string;
  ref(data: ActorRefData): ActorRef;
  /** The execution slots of one of the node's devices; undefined for a device it does not have. */
  deviceSlots(device: string): DeviceSlots | undefined;
  /** The turns of actor type `type` on this node, `slots` at once (the first call for a type sets it). */
  typeSlots(type: string, slots: number): Slots;
  /** Called by an activation once it has stopped or failed. */
  forget(activation: { readonly key: string }): void;
  /**
   * Calls `listener` each time durable consumer `name` of the mailbox stream gets a new leader (see
   * ConsumerLeaders), until the returned function is called.
   */
  watchConsumerLeader(name: string, listener: () => void): () => void;
  /** The node's durable answers of the last seconds, sent again after a reconnect (see RecentReplies). */
  readonly durableReplies?: RecentReplies;
  /** Whether the node sheds load now (see LoadShedder.refusal): new fast-mode messages are then refused. */
  readonly shedding?: { refusal(): string | undefined };
  /** Where the actor's own reminders are set (ActorContext.setReminder). */
  readonly reminders?: ReminderStore;
}
