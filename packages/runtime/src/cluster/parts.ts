import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Clock } from '../clock.js';
import type { Guard } from '../guard.js';
import type { LogFn } from '../log.js';
import type { WireLimits } from '../wire/publish.js';
import type { EmbeddedNats } from './embedded-nats.js';
import type { Names } from './names.js';

/** What a cluster connection is made of; built once by `connectCluster`. */
export interface ClusterParts {
  name: string;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: Names;
  nodesKv: KV;
  directoryKv: KV;
  stateKv: KV;
  /** See ClusterBuckets.remindersKv. */
  remindersKv: KV | undefined;
  limits: WireLimits;
  deadAfterMs: number;
  log: LogFn;
  /** Catches, counts and logs (rate-limited) what fails at this connection's inbound edges. */
  guard: Guard;
  clock: Clock;
  embedded: EmbeddedNats | undefined;
  /** Prefix of this connection's inboxes (its server permissions may allow only these). */
  inboxPrefix: string;
  /** Replicas of the stream and buckets this connection creates. */
  replicas: number;
}
