import { constants } from 'node:os';

/**
 * Resolves on the first SIGINT or SIGTERM. The handlers are installed when this is called, so call it
 * before announcing readiness: a signal sent the moment the announcement is read must find them
 * (without a handler, Node's default action kills the process mid-start).
 */
export function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** What a command stopped by SIGINT/SIGTERM before its end fails with: exit status 128 + the signal's number, as a shell reports a process the signal killed. */
export class Interrupted extends Error {
  readonly code = 'CLI_INTERRUPTED';
  readonly exitCode: number;

  constructor(
    what: string,
    readonly signal: NodeJS.Signals,
  ) {
    super(`${what} interrupted by ${signal}`);
    this.name = 'Interrupted';
    this.exitCode = 128 + (constants.signals[signal] ?? 0);
  }
}

/**
 * An AbortSignal aborted with `Interrupted` on the first SIGINT or SIGTERM, for a command that must
 * stop what it started when asked to (its handlers are installed now, as firstSignal's).
 */
export function interruptedBySignal(what: string): AbortSignal {
  const ac = new AbortController();
  void firstSignal().then((signal) => ac.abort(new Interrupted(what, signal)));
  return ac.signal;
}

/**
 * What `work` settles to, or `signal`'s reason once it aborts first. Interrupted work is left to
 * settle by itself (what it waits on is closed next), its failure then ignored.
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const aborted = () => reject(signal.reason);
    signal.addEventListener('abort', aborted, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', aborted));
  });
}

/**
 * `ended` resolves once stdin reaches its end or fails: the process holding its other end (the parent
 * that spawned this one with a stdin pipe) closed it or exited, even by SIGKILL. Reading starts now;
 * `release()` stops it (`ended` then never resolves), so that stdin does not keep this process alive.
 */
export function stdinEnded(): { ended: Promise<void>; release(): void } {
  const stdin = process.stdin;
  let released = false;
  const ended = new Promise<void>((resolve) => {
    const done = () => {
      if (!released) resolve();
    };
    stdin.once('end', done);
    stdin.once('close', done);
    stdin.once('error', done);
  });
  stdin.resume();
  return {
    ended,
    release: () => {
      released = true;
      stdin.destroy();
    },
  };
}
