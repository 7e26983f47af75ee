import { hostname } from 'node:os';
import { nuid } from '@nats-io/transport-node';
import type { AnyActorDefinition } from '../actor/definition.js';
import { checkToken } from '../cluster/names.js';
import { InvalidOptions } from '../errors.js';
import { type CalibrateFn, osProbe, type ProbeFn } from './capabilities.js';
import { resolveShedding, type SheddingLimits, type SheddingOptions } from './load-shedder.js';
import { parseVirtualDevice } from './slots.js';

export interface NodeOptions {
  /** @default `<hostname>-<pid>-<random>` */
  id?: string;
  labels?: Record<string, string>;
  /**
   * Modelled devices this node stands in for: catalog ids, each optionally with its slots (`h100:4`
   * runs four work items at once, plain `h100` one); advertised as `virtual:<id>`.
   */
  virtual?: string[];
  /** Actor types this node can activate by name. */
  actors?: AnyActorDefinition[];
  /** @default deadAfterMs / 3 */
  heartbeatMs?: number;
  /** Event-loop delay above which the node reports itself unhealthy. @default 1000 */
  stallMs?: number;
  /** Finds the host's devices once at start. @default the CPU as Node's `os` module sees it */
  probe?: ProbeFn;
  /**
   * Measures the CPU once, in the background, after start; its result goes into the capability
   * record. @default none: a service that embeds actors compiles nothing unasked (`stitch node` passes
   * @stitch/kernels' calibration)
   */
  calibrate?: CalibrateFn;
  /**
   * Activations this node hosts at most; one more is refused with Overloaded, so activation requests
   * (anyone may send them) cannot grow the process without bound. @default 10 000
   */
  maxActors?: number;
  /**
   * Largest actor snapshot a live migration may bring to this node, and most bytes of messages one
   * holds before its commit. @default 512 MiB
   */
  maxMigrationBytes?: number;
  /**
   * A live migration of an actor with delta hooks pauses it once the change since the last round is
   * at most this large (that change then travels in the pause); a larger one is sent while the actor
   * serves, for up to 4 rounds. Smaller means shorter pauses and more rounds. @default 64 KiB
   */
  maxPauseChangeBytes?: number;
  /**
   * After a live migration's commit the source keeps receiving this long before it unsubscribes
   * (what it receives meanwhile is forwarded), so that every server of a cluster has learned of the
   * target's subscription first. Otherwise a caller's server may, for a moment, find no subscriber
   * (the caller gets no-responders) or route a message to the source's server after the source left,
   * from where it reaches the target late and behind later ones. Messages that reach the target
   * directly wait this much longer during a move. @default 30 ms when the server is in a cluster, 0
   * on a single server
   */
  migrationGraceMs?: number;
  /**
   * Load shedding: while the node is overloaded, new fast-mode messages to its actors are answered
   * `Overloaded` at once instead of queued, so that callers back off before the process runs out of
   * heap or its loop falls behind for good. Durable messages wait in the stream instead; system
   * messages, migrations and the messages they forward are never shed. `false` turns it off.
   * @default { heapFraction: 0.9 } (V8's old generation fuller than 90 % of its limit; lateness of the
   * event loop is not watched unless `lagMs` is given)
   */
  shedding?: SheddingOptions | false;
  /**
   * Fault injection for tests: this node, as a migration's target, fails the given step of the
   * handoff protocol (its source must roll back or go on as that step requires).
   * @internal
   */
  faults?: { handoff?: 'begin' | 'state' | 'change' | 'commit' | 'early' | 'forward' | 'done' };
}

/** Default of NodeOptions.maxMigrationBytes: a large KV cache, well below a host's memory. */
export const DEFAULT_MAX_MIGRATION_BYTES = 512 * 1024 * 1024;

/** Default of NodeOptions.maxPauseChangeBytes: one part of the image, a fraction of a millisecond to send. */
export const DEFAULT_MAX_PAUSE_CHANGE_BYTES = 64 * 1024;

/** Default of NodeOptions.migrationGraceMs on a server that is part of a cluster. */
export const DEFAULT_CLUSTER_MIGRATION_GRACE_MS = 30;

/** Default of NodeOptions.maxActors: far above a normal node's load, far below running out of memory. */
export const DEFAULT_MAX_ACTORS = 10_000;

export interface ResolvedNodeOptions {
  id: string;
  labels: Record<string, string>;
  virtual: { catalogId: string; slots: number }[];
  actors: AnyActorDefinition[];
  heartbeatMs: number;
  stallMs: number;
  probe: ProbeFn;
  calibrate: CalibrateFn | undefined;
  maxActors: number;
  maxMigrationBytes: number;
  maxPauseChangeBytes: number;
  /** Undefined: by the server (see NodeOptions.migrationGraceMs). */
  migrationGraceMs: number | undefined;
  shedding: SheddingLimits;
  faults: { handoff?: string };
}

export function resolveNodeOptions(options: NodeOptions, deadAfterMs: number): ResolvedNodeOptions {
  const heartbeatMs = options.heartbeatMs ?? Math.floor(deadAfterMs / 3);
  if (!Number.isFinite(heartbeatMs) || heartbeatMs < 10 || heartbeatMs >= deadAfterMs)
    throw new InvalidOptions(`heartbeatMs must be ≥ 10 and below deadAfterMs (${deadAfterMs})`);
  const stallMs = options.stallMs ?? 1000;
  if (!Number.isFinite(stallMs) || stallMs <= 0) throw new InvalidOptions('stallMs must be > 0');
  const maxActors = options.maxActors ?? DEFAULT_MAX_ACTORS;
  if (!Number.isSafeInteger(maxActors) || maxActors < 1)
    throw new InvalidOptions('maxActors must be an integer ≥ 1');
  const maxMigrationBytes = options.maxMigrationBytes ?? DEFAULT_MAX_MIGRATION_BYTES;
  if (!Number.isSafeInteger(maxMigrationBytes) || maxMigrationBytes < 1)
    throw new InvalidOptions('maxMigrationBytes must be an integer ≥ 1');
  const maxPauseChangeBytes = options.maxPauseChangeBytes ?? DEFAULT_MAX_PAUSE_CHANGE_BYTES;
  if (!Number.isSafeInteger(maxPauseChangeBytes) || maxPauseChangeBytes < 0)
    throw new InvalidOptions('maxPauseChangeBytes must be an integer ≥ 0');
  const { migrationGraceMs } = options;
  if (
    migrationGraceMs !== undefined &&
    (!Number.isFinite(migrationGraceMs) || migrationGraceMs < 0 || migrationGraceMs > 10_000)
  )
    throw new InvalidOptions('migrationGraceMs must be from 0 to 10 000');
  if (options.probe !== undefined && typeof options.probe !== 'function')
    throw new InvalidOptions('probe must be a function that returns the host devices');
  if (options.calibrate !== undefined && typeof options.calibrate !== 'function')
    throw new InvalidOptions('calibrate must be a function (e.g. @stitch/kernels calibrateCpu), or left out');
  return {
    id: checkToken(
      'node id',
      options.id ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${nuid.next().slice(-6)}`,
    ),
    labels: { ...options.labels },
    virtual: (options.virtual ?? []).map(parseVirtualDevice),
    actors: options.actors ?? [],
    heartbeatMs,
    stallMs,
    probe: options.probe ?? osProbe,
    calibrate: options.calibrate,
    maxActors,
    maxMigrationBytes,
    maxPauseChangeBytes,
    migrationGraceMs,
    shedding: resolveShedding(options.shedding),
    faults: { ...options.faults },
  };
}
