export type {
  ActorContext,
  ActorDefinition,
  ActorInspection,
  ActorRefData,
  AnyActorDefinition,
  AskOptions,
  DeliveryMode,
  DurableOptions,
  Handler,
  MessageOf,
  ReplyOf,
  RestartPolicy,
  TellOptions,
} from './actor/definition.js';
export { ActorRef, defineActor } from './actor/definition.js';
export type { Cluster } from './cluster/cluster.js';
export type { ConnectOptions } from './cluster/connect.js';
export { connectCluster } from './cluster/connect.js';
export type { Location } from './cluster/directory.js';
export type { EmbeddedNats, EmbeddedNatsOptions } from './cluster/embedded-nats.js';
export { findNatsServer, startEmbeddedNats } from './cluster/embedded-nats.js';
export {
  ActorStopped,
  AlreadyActive,
  BadMessage,
  ClusterClosed,
  Crash,
  InvalidOptions,
  NatsServerNotFound,
  NatsStartFailed,
  NoNodeAvailable,
  NoResponders,
  Overloaded,
  PayloadTooLarge,
  RemoteError,
  StitchRuntimeError,
  Timeout,
} from './errors.js';
export type { MailboxMetrics, MailboxOptions } from './actor/mailbox.js';
export type { MembershipEvent } from './cluster/membership.js';
export type { CapabilityRecord, Device, Node, NodeOptions } from './node/node.js';
export type { LogFn } from './wire/publish.js';
