export type {
  ActorContext,
  ActorDefinition,
  ActorInspection,
  ActorRefData,
  AnyActorDefinition,
  AskOptions,
  DeliveryMode,
  DeltaHooks,
  ExactMessage,
  Handler,
  MessageOf,
  ReplyOf,
  TellOptions,
} from './actor/definition.js';
export { ActorRef, defineActor } from './actor/definition.js';
export type { MailboxMetrics, MailboxOptions } from './actor/mailbox.js';
export type { DurableOptions, RestartPolicy } from './actor/options.js';
export type { PersistMetrics, PersistPolicy } from './actor/persister.js';
export type { Clock, Timer } from './clock.js';
export { systemClock } from './clock.js';
export type { ActivationPlacement } from './cluster/activator.js';
export { leastLoadedNode } from './cluster/activator.js';
export type { DisconnectedClient, ServerEventOptions } from './cluster/advisories.js';
export { watchServerDisconnects } from './cluster/advisories.js';
export type { Cluster, ClusterMetrics } from './cluster/cluster.js';
export { connectCluster, initCluster } from './cluster/connect.js';
export type { Location } from './cluster/directory.js';
export type { EmbeddedNats, EmbeddedNatsOptions } from './cluster/embedded-nats.js';
export { findNatsServer, startEmbeddedNats } from './cluster/embedded-nats.js';
export type { MembershipEvent } from './cluster/membership.js';
export type { ConnectOptions } from './cluster/options.js';
export type { PartitionGuard, PartitionGuardOptions } from './cluster/partition-guard.js';
export { startPartitionGuard } from './cluster/partition-guard.js';
export {
  ActorStopped,
  AlreadyActive,
  BadMessage,
  ClusterClosed,
  ClusterNotInitialized,
  ConnectionFailed,
  Crash,
  DuplicateMessage,
  HandlerError,
  InvalidOptions,
  JetStreamDisabled,
  MigrationFailed,
  NatsServerNotFound,
  NatsStartFailed,
  NoNodeAvailable,
  NoResponders,
  Overloaded,
  PayloadTooLarge,
  RemoteError,
  RuntimeErrorCode,
  StaleFence,
  StitchError,
  StreamBroken,
  StreamCancelled,
  Timeout,
  WireVersionUnsupported,
} from './errors.js';
export type { LatencyStats } from './latency-stats.js';
export type { LogFn, LogLevel } from './log.js';
export { LOG_LEVELS, stderrLogAt } from './log.js';
export type { MigrationReport } from './migration/source.js';
export type {
  CalibrateFn,
  Calibration,
  CapabilityRecord,
  CpuDevice,
  Device,
  DeviceLoad,
  ProbeFn,
} from './node/capabilities.js';
export { osProbe } from './node/capabilities.js';
export type { NodeInspection } from './node/inspection.js';
export type { NodeShedding, SheddingOptions } from './node/load-shedder.js';
export type { NodeMigrations } from './node/migration-counts.js';
export type { Node } from './node/node.js';
export type { NodeOptions } from './node/options.js';
export type { ReleaseSlot, SlotsInUse } from './node/slots.js';
export type { ReminderInfo, ReminderOptions } from './reminders/record.js';
export { MAX_REMINDER_MESSAGE_BYTES, MIN_REMINDER_PERIOD_MS } from './reminders/record.js';
export type { ReminderCounts } from './reminders/scheduler.js';
export type { ActorStream, StreamOptions } from './stream/reader.js';
export type { TurnStream } from './stream/writer.js';
export {
  PRESAMPLED,
  type RecordedSpan,
  type SpanRecorder,
  setRootSampling,
  setSpanRecorder,
  setTracingEnabled,
} from './tracing.js';
