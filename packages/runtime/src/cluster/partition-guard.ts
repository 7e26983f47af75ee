import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { InvalidOptions } from '../errors.js';
import { type LogFn, stderrLog } from '../log.js';

/**
 * nats-server 2.9 has no Raft pre-vote: a server cut off from the others stands for election in every
 * group it belongs to, raising its term each time (every 4-9 s), and when the cut heals that term
 * makes the healthy leaders of those groups step down, so streams and consumers that never touched
 * the cut host stall for another election or more (12-22 s measured; ignoring such votes was
 * proposed for nats-server 2.11, nats-io/nats-server#5331). The guard runs the server and stops it
 * while it cannot reach a majority of the cluster's hosts, before its first election timeout, and
 * starts it again once it can: it rejoins as a follower of the terms the majority moved on to.
 */
export interface PartitionGuardOptions {
  /** The server's command line: the nats-server binary and its arguments. */
  command: string;
  args?: string[];
  /**
   * Every server of the cluster as `host:port`, a TCP port of it that its clients reach (its client
   * port: connecting there and leaving logs nothing, unlike a route port). This host's own server
   * (named by this host's name or one of its external addresses) is left out, so that every host can
   * be given the same list.
   */
  peers: string[];
  /** How often the peers are probed. @default 500 */
  probeIntervalMs?: number;
  /** A probe unanswered this long counts its peer out of reach. @default probeIntervalMs */
  probeTimeoutMs?: number;
  /**
   * The server is stopped once a majority has been out of reach this long: below nats-server's
   * shortest election timeout (4 s), so that it never raised a term. @default 1500
   */
  isolatedAfterMs?: number;
  /** A stopped server is started again once a majority has been in reach this long. @default 1000 */
  rejoinAfterMs?: number;
  /** A server that has not exited this long after SIGTERM gets SIGKILL. @default 10000 */
  stopTimeoutMs?: number;
  log?: LogFn;
}

export interface PartitionGuard {
  /** pid of the server while it runs. */
  readonly serverPid: number | undefined;
  /**
   * Resolves when the guard ends: with the server's exit code (or signal name) when it exited on its
   * own — the guard does not restart a server that failed, its supervisor restarts the guard — or
   * once close() has stopped it.
   */
  readonly ended: Promise<number | string>;
  /** Sends `signal` to the server if it runs (SIGHUP: it reloads its configuration). */
  signalServer(signal: NodeJS.Signals): void;
  /** Stops probing and the server (the signal is passed on: SIGTERM, SIGINT, or SIGKILL). */
  close(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Whether a majority of the cluster was reachable long enough to change what the server should do:
 * `isolated` once it has been out of reach for isolatedAfterMs, `rejoined` once back for rejoinAfterMs.
 */
export class QuorumWatch {
  readonly #quorum: number;
  #inReach = true;
  #since: number;
  #reported: boolean | undefined = true;

  constructor(
    peers: number,
    private readonly isolatedAfterMs: number,
    private readonly rejoinAfterMs: number,
    now: number,
  ) {
    this.#quorum = Math.floor((peers + 1) / 2) + 1;
    this.#since = now;
  }

  /** Records how many peers answered a round of probes at `now`. */
  observe(reachablePeers: number, now: number): 'isolated' | 'rejoined' | undefined {
    const inReach = reachablePeers + 1 >= this.#quorum;
    if (inReach !== this.#inReach) {
      this.#inReach = inReach;
      this.#since = now;
    }
    if (this.#reported === inReach) return undefined;
    const after = inReach ? this.rejoinAfterMs : this.isolatedAfterMs;
    if (now - this.#since < after) return undefined;
    this.#reported = inReach;
    return inReach ? 'rejoined' : 'isolated';
  }
}

/**
 * Whether `host:port` answers a TCP connection within `timeoutMs`. A refusal is an answer: the host
 * is in reach even if its server is down (else servers stopped by their guards would wait for each
 * other after a cut that isolated all of them). Silence, or no route to the host, is not. A timeout
 * that fires late (this process was not running: a stalled event loop runs timers before the
 * connections that completed meanwhile) says nothing, and counts as in reach: the guard stops a
 * server only on evidence.
 */
export function probePeer(peer: string, timeoutMs: number): Promise<boolean> {
  const { host, port } = parsePeer(peer);
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ host, port });
    const done = (reached: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reached);
    };
    const timer = setTimeout(() => done(performance.now() - started > 1.5 * timeoutMs), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}

function parsePeer(peer: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(peer);
  const port = Number(m?.[3]);
  if (!m || !(port > 0 && port < 65536))
    throw new InvalidOptions(`peer "${peer}" is not host:port (e.g. 10.0.0.2:4222 or [fd00::2]:4222)`);
  return { host: (m[1] ?? m[2])!, port };
}

function ms(name: string, value: number, min: number): number {
  if (!(Number.isFinite(value) && value >= min && value <= 3_600_000))
    throw new InvalidOptions(`${name} must be a number of milliseconds from ${min} to 3600000, not ${value}`);
  return value;
}

/** This host's name and external addresses: a peer named so is this host's own server. */
function thisHost(): Set<string> {
  const own = new Set([hostname().toLowerCase()]);
  for (const addresses of Object.values(networkInterfaces()))
    for (const a of addresses ?? []) if (!a.internal) own.add(a.address.toLowerCase());
  return own;
}

/** The exit code or signal of `child`; a command that could not be started ends with its error's code. */
function exitOf(child: ChildProcess): Promise<number | string> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? child.signalCode!);
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Runs `command` (a nats-server) under a partition guard; see PartitionGuardOptions. */
export function startPartitionGuard(options: PartitionGuardOptions): PartitionGuard {
  const own = thisHost();
  const peers = options.peers.filter((p) => !own.has(parsePeer(p).host.toLowerCase()));
  if (peers.length === 0)
    throw new InvalidOptions(
      "a partition guard needs the other servers of the cluster as peers (host:port of each, this host's own left out)",
    );
  const intervalMs = ms('probeIntervalMs', options.probeIntervalMs ?? 500, 1);
  const timeoutMs = ms('probeTimeoutMs', options.probeTimeoutMs ?? intervalMs, 1);
  const stopTimeoutMs = ms('stopTimeoutMs', options.stopTimeoutMs ?? 10_000, 0);
  const log = options.log ?? stderrLog;
  const watch = new QuorumWatch(
    peers.length,
    ms('isolatedAfterMs', options.isolatedAfterMs ?? 1500, 0),
    ms('rejoinAfterMs', options.rejoinAfterMs ?? 1000, 0),
    performance.now(),
  );
  let server: ChildProcess | undefined;
  /** The exit of a server the guard is stopping (close() waits for it too). */
  let stopping: Promise<number | string> = Promise.resolve(0);
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  let end!: (code: number | string) => void;
  const ended = new Promise<number | string>((resolve) => {
    end = resolve;
  });

  const startServer = () => {
    const child = spawn(options.command, options.args ?? [], { stdio: ['ignore', 'inherit', 'inherit'] });
    server = child;
    void exitOf(child).then((code) => {
      if (server !== child) return; // stopped by the guard
      server = undefined;
      if (closing) return;
      log('error', 'nats-server exited; the partition guard ends with it', { code });
      clearTimeout(timer);
      closing = true;
      end(code);
    });
  };

  const stopServer = (signal: NodeJS.Signals): Promise<number | string> => {
    const child = server;
    server = undefined;
    if (!child) return stopping;
    const exited = exitOf(child);
    child.kill(signal);
    const kill = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
    stopping = exited.finally(() => clearTimeout(kill));
    return stopping;
  };

  // Rounds start every intervalMs whatever their probes wait for: a cut is noticed within
  // isolatedAfterMs plus one round, well before an election timeout.
  const tick = async () => {
    const started = performance.now();
    const answers = await Promise.all(peers.map((p) => probePeer(p, timeoutMs)));
    if (closing) return;
    const reachable = answers.filter(Boolean).length;
    const change = watch.observe(reachable, performance.now());
    const fields = { reachable, peers: peers.length };
    if (change === 'isolated' && server) {
      log('warn', 'no majority of the cluster in reach: nats-server stopped until there is', fields);
      await stopServer('SIGTERM');
    } else if (change === 'rejoined' && !server) {
      log('warn', 'a majority of the cluster is in reach again: nats-server started', fields);
      startServer();
    }
    if (!closing)
      timer = setTimeout(() => void tick(), Math.max(0, started + intervalMs - performance.now()));
  };

  startServer();
  timer = setTimeout(() => void tick(), intervalMs);
  return {
    get serverPid() {
      return server?.pid;
    },
    ended,
    signalServer(signal: NodeJS.Signals) {
      server?.kill(signal);
    },
    async close(signal: NodeJS.Signals = 'SIGTERM') {
      if (!closing) {
        closing = true;
        clearTimeout(timer);
        end(await stopServer(signal));
      }
      return ended;
    },
  };
}
