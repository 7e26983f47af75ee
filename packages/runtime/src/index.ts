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
} from './actor.js';
export { ActorRef, defineActor } from './actor.js';
export type { Cluster } from './cluster.js';
export type { ConnectOptions } from './connect.js';
export { connectCluster } from './connect.js';
export type { Location } from './directory.js';
export type { EmbeddedNats, EmbeddedNatsOptions } from './embedded-nats.js';
export { findNatsServer, startEmbeddedNats } from './embedded-nats.js';
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
export type { MailboxMetrics, MailboxOptions } from './mailbox.js';
export type { MembershipEvent } from './membership.js';
export type { CapabilityRecord, Device, Node, NodeOptions } from './node.js';
export type { LogFn } from './wire.js';
