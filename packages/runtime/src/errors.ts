/** Base of every error the runtime throws: a stable `code` and a message that says what to do. */
export class StitchRuntimeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** No nats-server binary could be found. */
export class NatsServerNotFound extends StitchRuntimeError {
  constructor(searched: string) {
    super(
      'NATS_SERVER_NOT_FOUND',
      `nats-server was not found (${searched}). Install it with "apt-get install -y nats-server", ` +
        'run "bash deploy/setup.sh", or set STITCH_NATS_SERVER to its path.',
    );
  }
}

/** nats-server was found but did not become ready. */
export class NatsStartFailed extends StitchRuntimeError {
  constructor(reason: string, logTail: string, options?: { cause?: unknown }) {
    super(
      'NATS_START',
      `nats-server did not start: ${reason}.${logTail ? `\nIts last log lines:\n${logTail}` : ''}`,
      options,
    );
  }
}

/** Options passed to a runtime API were invalid. */
export class InvalidOptions extends StitchRuntimeError {
  constructor(message: string) {
    super('RUNTIME_OPTIONS', message);
  }
}

/** An `ask` got no reply before its deadline. */
export class Timeout extends StitchRuntimeError {
  constructor(target: string, timeoutMs: number) {
    super(
      'ACTOR_TIMEOUT',
      `${target} did not reply within ${timeoutMs} ms; raise timeoutMs, or retry with the same idempotencyKey.`,
    );
  }
}

/** Nothing is subscribed to the actor's subject: it is not spawned, or its node is gone. */
export class NoResponders extends StitchRuntimeError {
  constructor(target: string) {
    super(
      'ACTOR_NO_RESPONDERS',
      `no live activation of ${target}; spawn it first, or check that its node is up.`,
    );
  }
}

/** The actor's mailbox (or this caller's in-flight share of it) is full; the message was not queued. */
export class Overloaded extends StitchRuntimeError {
  constructor(detail: string) {
    super('ACTOR_OVERLOADED', `${detail}; back off and retry, or raise the actor's mailbox limits.`);
  }
}

/** The handler threw; `remoteCode`/`remoteName` are those of the error on the actor's side. */
export class RemoteError extends StitchRuntimeError {
  readonly remoteName: string;
  constructor(code: string, remoteName: string, message: string) {
    super(code, message);
    this.remoteName = remoteName;
  }
}

/** A message could not be decoded or did not match the actor's handlers. */
export class BadMessage extends StitchRuntimeError {
  constructor(detail: string) {
    super(
      'ACTOR_BAD_MESSAGE',
      `${detail}; send a msgpack object { type, ... } naming one of the actor's handlers.`,
    );
  }
}

/** A payload exceeds the server's max_payload and chunking is off (or the mode cannot chunk). */
export class PayloadTooLarge extends StitchRuntimeError {
  constructor(bytes: number, maxPayload: number, hint: string) {
    super(
      'PAYLOAD_TOO_LARGE',
      `a ${bytes}-byte message exceeds the server's max_payload of ${maxPayload} bytes; ${hint}.`,
    );
  }
}

/** Another live activation already owns the actor id. */
export class AlreadyActive extends StitchRuntimeError {
  constructor(key: string, node: string) {
    super(
      'ACTOR_ALREADY_ACTIVE',
      `actor ${key} is already active on node ${node}; use its ref, or stop it first.`,
    );
  }
}

/** Thrown by a handler to crash its actor: the message fails and the actor restarts from its last snapshot. */
export class Crash extends StitchRuntimeError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('ACTOR_CRASH', `actor crashed: ${reason}`, options);
  }
}

/** The actor exceeded its restart limit, or was stopped, and no longer takes messages. */
export class ActorStopped extends StitchRuntimeError {
  constructor(key: string, reason: string) {
    super('ACTOR_STOPPED', `actor ${key} is stopped (${reason}); spawn it again to continue.`);
  }
}

/** No node can host the requested actor type. */
export class NoNodeAvailable extends StitchRuntimeError {
  constructor(detail: string) {
    super('NO_NODE', `${detail}; start a node with "stitch node" that registers this actor type.`);
  }
}

/** The cluster connection is closed or closing. */
export class ClusterClosed extends StitchRuntimeError {
  constructor() {
    super('CLUSTER_CLOSED', 'the cluster connection is closed; call connectCluster() again.');
  }
}

type Rebuilder = (message: string) => StitchRuntimeError;
// Errors that mean the same thing on both sides are rebuilt as their own class on the caller.
const REBUILD: Record<string, Rebuilder> = {
  ACTOR_OVERLOADED: (m) => withMessage(new Overloaded(''), m),
  ACTOR_BAD_MESSAGE: (m) => withMessage(new BadMessage(''), m),
  ACTOR_STOPPED: (m) => withMessage(new ActorStopped('', ''), m),
  PAYLOAD_TOO_LARGE: (m) => withMessage(new PayloadTooLarge(0, 0, ''), m),
  ACTOR_ALREADY_ACTIVE: (m) => withMessage(new AlreadyActive('', ''), m),
  NO_NODE: (m) => withMessage(new NoNodeAvailable(''), m),
};

function withMessage<E extends Error>(err: E, message: string): E {
  err.message = message;
  return err;
}

/** Rebuilds an error that crossed NATS: a known runtime code gets its class back, anything else is a RemoteError. */
export function rebuildError(code: string, name: string, message: string): StitchRuntimeError {
  const rebuild = REBUILD[code];
  return rebuild ? rebuild(message) : new RemoteError(code, name, message);
}
