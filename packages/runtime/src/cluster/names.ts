import { InvalidOptions } from '../errors.js';

// Cluster names, actor types and ids become NATS subject tokens, KV keys and consumer names, so they
// are limited to characters that are valid in all three.
export const TOKEN = /^[A-Za-z0-9_-]{1,120}$/;

export function checkToken(what: string, value: unknown): string {
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    throw new InvalidOptions(
      `${what} must be 1-120 characters of A-Z a-z 0-9 _ - (got ${JSON.stringify(value)})`,
    );
  }
  return value;
}

/** Every subject, stream and bucket one cluster uses; see the README for the full table. */
export interface Names {
  actor(type: string, id: string): string;
  durable(type: string, id: string): string;
  durableAll: string;
  /** Commands to a node (stop an actor): for coordinators and operators, not for other nodes. */
  nodeControl(nodeId: string): string;
  /** Questions to a node (inspect, does it host an actor): nodes ask each other these. */
  nodeQuery(nodeId: string): string;
  /** Live migrations into a node: another node hands an actor's state and its queued messages over here. */
  nodeHandoff(nodeId: string): string;
  /** Where a node takes activation requests; separate from control so that clients may activate only. */
  activate(nodeId: string): string;
  membership: string;
  /**
   * Prefix of the inboxes durable consumers pull with, where nodes may subscribe: a migration's target
   * takes over the source's pulls whatever either's own inbox prefix.
   */
  pulls: string;
  stream: string;
  consumer(type: string, id: string): string;
  nodesBucket: string;
  directoryBucket: string;
  stateBucket: string;
  /** Reminders (see reminders/record.ts), key `<type>.<id>.<name>`. */
  remindersBucket: string;
  key(type: string, id: string): string;
}

export function names(cluster: string): Names {
  const c = checkToken('cluster name', cluster);
  return {
    actor: (type, id) => `stitch.${c}.actor.${type}.${id}`,
    durable: (type, id) => `stitch.${c}.durable.${type}.${id}`,
    durableAll: `stitch.${c}.durable.>`,
    nodeControl: (nodeId) => `stitch.${c}.node.${nodeId}.control`,
    nodeQuery: (nodeId) => `stitch.${c}.node.${nodeId}.query`,
    nodeHandoff: (nodeId) => `stitch.${c}.node.${nodeId}.handoff`,
    activate: (nodeId) => `stitch.${c}.activate.${nodeId}`,
    membership: `stitch.${c}.membership`,
    pulls: `stitch.${c}.pull`,
    stream: `stitch_${c}_mailbox`,
    consumer: (type, id) => `${type}__${id}`,
    nodesBucket: `stitch_${c}_nodes`,
    directoryBucket: `stitch_${c}_directory`,
    stateBucket: `stitch_${c}_state`,
    remindersBucket: `stitch_${c}_reminders`,
    key: (type, id) => `${type}.${id}`,
  };
}
