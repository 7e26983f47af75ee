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
    super('NATS_START', `nats-server did not start: ${reason}.${logTail ? `\nIts last log lines:\n${logTail}` : ''}`, options);
  }
}
