import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { NatsServerNotFound, NatsStartFailed } from '../errors.js';

export interface EmbeddedNatsOptions {
  /** Path of the nats-server binary. @default $STITCH_NATS_SERVER, then `nats-server` on PATH */
  serverPath?: string;
  /** Enable JetStream with a store inside the temp dir. @default true */
  jetstream?: boolean;
  /** Largest message the server accepts, in bytes. @default 1 MiB (the nats-server default) */
  maxPayload?: number;
  /** How long to wait for the server to be ready. @default 10000 */
  startTimeoutMs?: number;
  /** More nats-server configuration, appended as is (e.g. an `authorization` block). */
  config?: string;
}

export interface EmbeddedNats {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** pid of the nats-server process. */
  readonly pid: number;
  /** Temp dir holding config, JetStream store and ports file; removed by `stop()`. */
  readonly dir: string;
  /** Stops the server and removes its dir; safe to call twice. */
  stop(): Promise<void>;
}

// The server runs under a small shell watchdog that reads our end of a pipe: when this process
// exits for any reason (even SIGKILL) the pipe closes, the watchdog terminates the server and
// deletes its dir. So no nats-server or temp dir outlives the process that started it.
const WATCHDOG = [
  'dir="$1"; shift',
  // Ctrl-C signals the whole foreground process group: the watchdog ignores it (and TERM, HUP) so it
  // outlives the server and removes the dir. The server gets TERM and HUP back; INT stays ignored for
  // a background job of a non-interactive shell, but nats-server's signal.Notify (Go) re-enables it.
  "trap '' INT TERM HUP",
  // A background job's stdin is /dev/null in a non-interactive shell, so keep the pipe on fd 3.
  'exec 3<&0',
  '( trap - TERM HUP; exec "$@" ) </dev/null 3<&- & server=$!',
  // Our stderr may be a pipe nobody reads any more (the owner died): the shell's report of a killed
  // job would get it SIGPIPE before it removes the dir. Only the server has something to say.
  'exec 2>/dev/null',
  // Once the pipe closes: TERM, and KILL if the server has not exited 5 s later.
  '{ cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null || exit 0',
  '  n=0; while [ $n -lt 50 ] && kill -0 "$server" 2>/dev/null; do sleep 0.1; n=$((n + 1)); done',
  '  kill -KILL "$server" 2>/dev/null; } & watcher=$!',
  'wait "$server"; rc=$?',
  // The server is reaped: its pid may be reused, so nothing may signal it any more.
  'kill -KILL "$watcher" 2>/dev/null',
  'rm -rf "$dir"',
  'exit $rc',
].join('\n');

const DIR_PREFIX = 'stitch-nats-';
const PID_FILE = 'nats.pid';
const STALE_WITHOUT_PID_MS = 60_000;

/**
 * Removes temp dirs of servers that died together with their watchdog (a whole process group
 * SIGKILLed, a machine reset): their pid file names a process that no longer exists.
 */
function sweepStaleDirs(): void {
  const root = tmpdir();
  for (const name of readdirSync(root)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(root, name);
    try {
      const pid = Number(readFileSync(join(dir, PID_FILE), 'utf8').trim());
      if (!processExists(pid)) rmSync(dir, { recursive: true, force: true });
    } catch {
      // No pid file yet: a server may be starting right now, so only old dirs go.
      try {
        if (Date.now() - statSync(dir).mtimeMs > STALE_WITHOUT_PID_MS)
          rmSync(dir, { recursive: true, force: true });
      } catch {
        // Removed meanwhile by its own watchdog.
      }
    }
  }
}

function processExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Finds nats-server: $STITCH_NATS_SERVER, then PATH. Throws `NatsServerNotFound`. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.STITCH_NATS_SERVER;
  if (explicit) {
    if (isExecutable(explicit)) return explicit;
    throw new NatsServerNotFound(`STITCH_NATS_SERVER=${explicit} is not an executable file`);
  }
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  throw new NatsServerNotFound('not in STITCH_NATS_SERVER, not on PATH');
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Starts nats-server on a free loopback port (JetStream on, temp store) and waits until it is ready. */
export async function startEmbeddedNats(options: EmbeddedNatsOptions = {}): Promise<EmbeddedNats> {
  const serverPath = options.serverPath ?? findNatsServer();
  sweepStaleDirs();
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  const conf = [
    'listen: "127.0.0.1:-1"',
    `pid_file: "${join(dir, PID_FILE)}"`,
    `max_payload: ${options.maxPayload ?? 1024 * 1024}`,
    options.jetstream === false ? '' : `jetstream { store_dir: "${join(dir, 'js')}" }`,
    options.config ?? '',
  ].join('\n');
  writeFileSync(join(dir, 'nats.conf'), conf);
  const child = spawn(
    'sh',
    ['-c', WATCHDOG, 'stitch-nats-watchdog', dir, serverPath, '-c', join(dir, 'nats.conf')],
    {
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  );
  const log: string[] = [];
  try {
    const { pid, port } = await waitReady(child, log, options.startTimeoutMs ?? 10_000);
    return embedded(child, dir, pid, port);
  } catch (err) {
    await terminate(child);
    rmSync(dir, { recursive: true, force: true });
    throw err instanceof NatsStartFailed
      ? err
      : new NatsStartFailed(String(err), log.join('\n'), { cause: err });
  }
}

// The server logs `[pid] … Listening for client connections on 127.0.0.1:PORT` before `Server is ready`.
const LISTENING = /^\[(\d+)\].*Listening for client connections on [^:]+:(\d+)/;

function waitReady(
  child: ChildProcess,
  log: string[],
  timeoutMs: number,
): Promise<{ pid: number; port: number }> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let address: { pid: number; port: number } | undefined;
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        log.push(line);
        if (log.length > 30) log.shift();
        const m = LISTENING.exec(line);
        if (m) address = { pid: Number(m[1]), port: Number(m[2]) };
        if (line.includes('Server is ready')) {
          if (address) done(address);
          else fail('it logged no client port');
        }
      }
    };
    const onExit = (code: number | null) => fail(`it exited with code ${code}`);
    const onError = (err: Error) => fail(err.message);
    function cleanup() {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    function done(found: { pid: number; port: number }) {
      cleanup();
      // Keep draining stderr so a chatty server never blocks on a full pipe.
      child.stderr?.off('data', onData);
      child.stderr?.resume();
      resolve(found);
    }
    function fail(reason: string) {
      cleanup();
      reject(new NatsStartFailed(reason, log.join('\n')));
    }
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

function embedded(child: ChildProcess, dir: string, pid: number, port: number): EmbeddedNats {
  let stopping: Promise<void> | undefined;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid,
    dir,
    stop() {
      stopping ??= terminate(child).then(() => rmSync(dir, { recursive: true, force: true }));
      return stopping;
    },
  };
}

/**
 * Closes the watchdog's pipe and waits: the watchdog TERMs the server, KILLs it 5 s later if need
 * be, removes the dir and exits. A watchdog that has not exited 10 s later is SIGKILLed.
 */
function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin?.end();
  });
}
