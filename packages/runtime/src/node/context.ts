import type { ActorRef, ActorRefData, AnyActorDefinition } from '../actor/definition.js';
import type { Directory } from '../cluster/directory.js';
import type { ClusterParts } from '../cluster/parts.js';
import type { Reconnects } from '../cluster/reconnects.js';
import type { ReminderScheduler } from '../reminders/scheduler.js';
import type { ReminderStore } from '../reminders/store.js';

/** What a node needs from the cluster connection it runs on. */
export interface NodeContext {
  readonly parts: ClusterParts;
  readonly directory: Directory;
  readonly reconnects: Reconnects;
  ref(data: ActorRefData): ActorRef;
  actorType(type: string): AnyActorDefinition | undefined;
  readonly actorTypes: string[];
  /** Where a turn's `setReminder` writes. */
  readonly reminders: ReminderStore;
  /** Fires the reminders this node owns; absent where the cluster has no reminders bucket. */
  readonly reminderScheduler: ReminderScheduler | undefined;
}
