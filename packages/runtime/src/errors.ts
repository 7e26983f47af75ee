/** Every code a runtime error can carry; a handler's own codes arrive as `RemoteError`. */
export const RuntimeErrorCode = {
  NatsServerNotFound: 'NATS_SERVER_NOT_FOUND',
  NatsStart: 'NATS_START',
  NatsConnect: 'NATS_CONNECT',
  JetStreamDisabled: 'JETSTREAM_DISABLED',
  ClusterNotInitialized: 'CLUSTER_NOT_INITIALIZED',
  InvalidOptions: 'RUNTIME_OPTIONS',
  Timeout: 'ACTOR_TIMEOUT',
  NoResponders: 'ACTOR_NO_RESPONDERS',
  Overloaded: 'ACTOR_OVERLOADED',
  BadMessage: 'ACTOR_BAD_MESSAGE',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  AlreadyActive: 'ACTOR_ALREADY_ACTIVE',
  Crash: 'ACTOR_CRASH',
  Duplicate: 'ACTOR_DUPLICATE',
  HandlerError: 'HANDLER_ERROR',
  ActorStopped: 'ACTOR_STOPPED',
  NoNode: 'NO_NODE',
  ClusterClosed: 'CLUSTER_CLOSED',
  StaleFence: 'STALE_FENCE',
  MigrationFailed: 'MIGRATION_FAILED',
  WireVersion: 'WIRE_VERSION',
  StreamCancelled: 'STREAM_CANCELLED',
  StreamBroken: 'STREAM_BROKEN',
} as const;
export type RuntimeErrorCode = (typeof RuntimeErrorCode)[keyof typeof RuntimeErrorCode];

/** Base of every error the runtime throws or rejects with: a stable `code` and a message that says what to do. */
export class StitchError extends Error {
  /** A `RuntimeErrorCode`, or the code of an application error thrown by a remote handler. */
  readonly code: string;
  /** True when the error happened on the actor's side and crossed NATS back to this caller. */
  remote = false;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** No nats-server binary could be found. */
export class NatsServerNotFound extends StitchError {
  constructor(searched: string) {
    super(
      RuntimeErrorCode.NatsServerNotFound,
      `nats-server was not found (${searched}). Install it with "apt-get install -y nats-server", ` +
        'run "bash deploy/setup.sh", or set STITCH_NATS_SERVER to its path.',
    );
  }
}

/** nats-server was found but did not become ready. */
export class NatsStartFailed extends StitchError {
  constructor(reason: string, logTail: string, options?: { cause?: unknown }) {
    super(
      RuntimeErrorCode.NatsStart,
      `nats-server did not start: ${reason}.${logTail ? `\nIts last log lines:\n${logTail}` : ''}`,
      options,
    );
  }
}

/** The first connection to the NATS server failed (refused, unreachable, bad credentials, TLS). */
export class ConnectionFailed extends StitchError {
  readonly url: string;
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super(
      RuntimeErrorCode.NatsConnect,
      `could not connect to NATS at ${url}: ${reason}; check that nats-server runs there (nats-server -js), ` +
        'or pass connectCluster({ waitForServerMs }) to wait for it.',
      options,
    );
    this.url = url;
  }
}

/** The server answers but has JetStream off: durable mode, the directory and state buckets need it. */
export class JetStreamDisabled extends StitchError {
  constructor(url: string, options?: { cause?: unknown }) {
    super(
      RuntimeErrorCode.JetStreamDisabled,
      `the NATS server at ${url} has JetStream disabled; start it with "nats-server -js" ` +
        '(or jetstream {} in its config).',
      options,
    );
  }
}

/** A secured server lacks the cluster's stream or buckets, and clients may not create them. */
export class ClusterNotInitialized extends StitchError {
  constructor(cluster: string, missing: string) {
    super(
      RuntimeErrorCode.ClusterNotInitialized,
      `cluster "${cluster}" is not set up on this server (missing ${missing}); run ` +
        `"stitch cluster init --name ${cluster}" once with credentials that may create streams and buckets.`,
    );
  }
}

/** Options passed to a runtime API were invalid. */
export class InvalidOptions extends StitchError {
  constructor(message: string) {
    super(RuntimeErrorCode.InvalidOptions, message);
  }
}

/** An `ask` got no reply before its deadline. */
export class Timeout extends StitchError {
  constructor(target: string, timeoutMs: number) {
    super(
      RuntimeErrorCode.Timeout,
      `${target} did not reply within ${timeoutMs} ms; raise timeoutMs, or retry with the same idempotencyKey.`,
    );
  }
}

/** Nothing is subscribed to the actor's subject: it is not spawned, or its node is gone. */
export class NoResponders extends StitchError {
  constructor(target: string) {
    super(
      RuntimeErrorCode.NoResponders,
      `no live activation of ${target}; spawn it first (or use cluster.get), or check that its node is up.`,
    );
  }
}

/** The actor's mailbox (or this caller's in-flight share of it) is full; the message was not queued. */
export class Overloaded extends StitchError {
  constructor(detail: string) {
    super(RuntimeErrorCode.Overloaded, `${detail}; back off and retry, or raise the actor's mailbox limits.`);
  }
}

/** A handler threw an application error; `code`/`remoteName` are those of the error on the actor's side. */
export class RemoteError extends StitchError {
  readonly remoteName: string;
  constructor(code: string, remoteName: string, message: string) {
    super(code, message);
    this.remoteName = remoteName;
  }
}

/** A handler threw an error without a code of its own (a plain `Error`, a `TypeError`, …). */
export class HandlerError extends StitchError {
  readonly remoteName: string;
  constructor(remoteName: string, message: string) {
    super(RuntimeErrorCode.HandlerError, message);
    this.remoteName = remoteName;
  }
}

/** A message could not be decoded or did not match the actor's handlers. */
export class BadMessage extends StitchError {
  constructor(detail: string) {
    super(
      RuntimeErrorCode.BadMessage,
      `${detail}; send a msgpack object { type, ... } naming one of the actor's handlers.`,
    );
  }
}

/** A payload exceeds the server's max_payload and chunking is off (or the mode cannot chunk). */
export class PayloadTooLarge extends StitchError {
  /** `what` exceeds `limit` (by default a message, the server's max_payload). */
  constructor(
    bytes: number,
    maxPayload: number,
    hint: string,
    { what = 'message', limit = "the server's max_payload" }: { what?: string; limit?: string } = {},
  ) {
    super(
      RuntimeErrorCode.PayloadTooLarge,
      `a ${bytes}-byte ${what} exceeds ${limit} of ${maxPayload} bytes; ${hint}.`,
    );
  }
}

/** Another live activation already owns the actor id. */
export class AlreadyActive extends StitchError {
  constructor(key: string, node: string) {
    super(
      RuntimeErrorCode.AlreadyActive,
      `actor ${key} is already active on node ${node}; use its ref, or stop it first.`,
    );
  }
}

/** Thrown by a handler to crash its actor: the message fails and the actor restarts from its last snapshot. */
export class Crash extends StitchError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(RuntimeErrorCode.Crash, `actor crashed: ${reason}`, options);
  }
}

/** A repeat of an applied durable message whose reply was too large to keep in the dedup record. */
export class DuplicateMessage extends StitchError {
  constructor(key: string, replyBytes: number) {
    super(
      RuntimeErrorCode.Duplicate,
      `the message with idempotency key ${key} was already applied; its ${replyBytes}-byte reply was not ` +
        'kept, so ask the actor for the result instead of repeating the message.',
    );
  }
}

/** The actor exceeded its restart limit, or was stopped, and no longer takes messages. */
export class ActorStopped extends StitchError {
  constructor(key: string, reason: string) {
    super(
      RuntimeErrorCode.ActorStopped,
      `actor ${key} is stopped (${reason}); spawn it again (or use cluster.get) to continue.`,
    );
  }
}

/** No node can host the requested actor type. */
export class NoNodeAvailable extends StitchError {
  constructor(detail: string) {
    super(
      RuntimeErrorCode.NoNode,
      `${detail}; start a node with "stitch node" that registers this actor type.`,
    );
  }
}

/** A command carried a fencing epoch older than one the node has seen: its sender was superseded. */
export class StaleFence extends StitchError {
  constructor(name: string, epoch: number, current: number) {
    super(
      RuntimeErrorCode.StaleFence,
      `a ${name} command of epoch ${epoch} was refused: epoch ${current} has taken over; this sender is no longer the ${name}.`,
    );
  }
}

/**
 * A live migration did not complete: the actor stays where it was and keeps serving (every step before
 * the directory moves rolls back to the source).
 */
export class MigrationFailed extends StitchError {
  constructor(actor: string, step: string, reason: string, options?: { cause?: unknown }) {
    super(
      RuntimeErrorCode.MigrationFailed,
      `migrating ${actor} failed at ${step}: ${reason}; it still runs on its source node (retry, or pick another target)`,
      options,
    );
  }
}

/** A message of a wire version this build does not understand: a newer major, one two majors older, or not a version. */
export class WireVersionUnsupported extends StitchError {
  /** The version as received. */
  readonly received: string;
  constructor(received: string, speaks: string) {
    super(
      RuntimeErrorCode.WireVersion,
      `a message of wire protocol ${JSON.stringify(received)} reached a node that speaks ${speaks} and ` +
        `understands majors ${understoodMajors(speaks)}; run builds at most one major apart (finish the ` +
        'rolling upgrade of every node before deploying the next major).',
    );
    this.received = received;
  }
}

function understoodMajors(speaks: string): string {
  const own = Number.parseInt(speaks, 10);
  return own > 0 ? `${own - 1} and ${own}` : `${own}`;
}

/** The reader of a stream cancelled it, stopped reading for too long, or its deadline passed. */
export class StreamCancelled extends StitchError {
  constructor(detail: string) {
    super(
      RuntimeErrorCode.StreamCancelled,
      `the stream was cancelled (${detail}); stop the work it was for.`,
    );
  }
}

/** Items of a stream were lost on the way (a gap, or no end after the actor's reply): the output is incomplete. */
export class StreamBroken extends StitchError {
  constructor(detail: string) {
    super(
      RuntimeErrorCode.StreamBroken,
      `${detail}; the stream's output is incomplete: run the request again.`,
    );
  }
}

/** The cluster connection is closed or closing. */
export class ClusterClosed extends StitchError {
  constructor() {
    super(RuntimeErrorCode.ClusterClosed, 'the cluster connection is closed; call connectCluster() again.');
  }
}

/**
 * Rebuilds an error that crossed NATS: a runtime code gets its class back with the remote message,
 * an application code becomes a RemoteError.
 */
export function rebuildError(code: string, name: string, message: string): StitchError {
  const rebuild = REBUILD[code as RuntimeErrorCode];
  const err = rebuild ? rebuild(name) : new RemoteError(code, name, message);
  err.message = message;
  err.remote = true;
  return err;
}

// Errors that mean the same thing on both sides become their own class on the caller.
const REBUILD: Partial<Record<RuntimeErrorCode, (remoteName: string) => StitchError>> = {
  RUNTIME_OPTIONS: () => new InvalidOptions(''),
  ACTOR_TIMEOUT: () => new Timeout('', 0),
  ACTOR_NO_RESPONDERS: () => new NoResponders(''),
  ACTOR_OVERLOADED: () => new Overloaded(''),
  ACTOR_BAD_MESSAGE: () => new BadMessage(''),
  PAYLOAD_TOO_LARGE: () => new PayloadTooLarge(0, 0, ''),
  ACTOR_ALREADY_ACTIVE: () => new AlreadyActive('', ''),
  ACTOR_CRASH: () => new Crash(''),
  ACTOR_DUPLICATE: () => new DuplicateMessage('', 0),
  HANDLER_ERROR: (remoteName) => new HandlerError(remoteName, ''),
  ACTOR_STOPPED: () => new ActorStopped('', ''),
  NO_NODE: () => new NoNodeAvailable(''),
  CLUSTER_CLOSED: () => new ClusterClosed(),
  STALE_FENCE: () => new StaleFence('', 0, 0),
  MIGRATION_FAILED: () => new MigrationFailed('', '', ''),
  WIRE_VERSION: () => new WireVersionUnsupported('', ''),
  STREAM_CANCELLED: () => new StreamCancelled(''),
  STREAM_BROKEN: () => new StreamBroken(''),
};
