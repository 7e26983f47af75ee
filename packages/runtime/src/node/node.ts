import { freemem, hostname, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import {
  type Msg,
  type NatsConnection,
  headers as natsHeaders,
  nuid,
  type Subscription,
} from '@nats-io/transport-node';
import type { Calibration } from '@stitch/kernels';
import { Activation } from '../actor/activation.js';
import type { ActorInspection, ActorRef, ActorRefData, AnyActorDefinition } from '../actor/definition.js';
import type { Cluster } from '../cluster/cluster.js';
import { decode, encode } from '../wire/codec.js';
import type { Directory } from '../cluster/directory.js';
import { H } from '../wire/envelope.js';
import { InvalidOptions } from '../errors.js';
import type { Host } from '../actor/host.js';
import type { MembershipEvent } from '../cluster/membership.js';
import { checkToken, type Names } from '../cluster/names.js';
import { failure } from '../actor/state.js';
import type { LogFn, WireLimits } from '../wire/publish.js';

export interface NodeOptions {
  /** @default `<hostname>-<pid>-<random>` */
  id?: string;
  labels?: Record<string, string>;
  /** Modelled devices this node stands in for (catalog ids, e.g. `h100`); advertised as `virtual:<id>`. */
  virtual?: string[];
  /** Actor types this node can spawn by name. */
  actors?: AnyActorDefinition[];
  /** @default deadAfterMs / 3 */
  heartbeatMs?: number;
  /** Event-loop delay above which the node reports itself unhealthy. @default 1000 */
  stallMs?: number;
  /**
   * Measure achieved GFLOP/s and GB/s with @stitch/kernels' calibrate() once, in the background, after
   * start (compiles two kernels on first use). @default true
   */
  calibrate?: boolean;
}

export type Device =
  | { kind: 'cpu'; model: string; arch: string; cores: number; features: string[]; x86Level: string | null }
  | { kind: 'cuda'; index: number }
  | { kind: `virtual:${string}`; catalogId: string; modelled: true };

/** What a node advertises in `stitch_<cluster>_nodes` (key = node id), renewed every heartbeat. */
export interface CapabilityRecord {
  nodeId: string;
  host: string;
  pid: number;
  startedAt: number;
  heartbeatAt: number;
  devices: Device[];
  memory: { totalBytes: number; freeBytes: number; rssBytes: number };
  labels: Record<string, string>;
  actorTypes: string[];
  load: { actors: number; queued: number; running: number; loadAvg1: number };
  eventLoopLagMs: { p99: number; max: number };
  healthy: boolean;
  /** Measured by @stitch/kernels' calibrate() on the CPU; absent until it finishes, or when it is off or failed. */
  calibrated?: Calibration & { measuredAt: number };
  probeError?: string;
}

/** The node actor: hosts activations, advertises capabilities and load, answers control requests. */
export class Node implements Host {
  readonly id: string;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly names: Names;
  readonly stateKv: KV;
  readonly directory: Directory;
  readonly limits: WireLimits;
  readonly log: LogFn;
  readonly #cluster: Cluster;
  readonly #options: NodeOptions;
  readonly #activations = new Map<string, Activation>();
  readonly #starting = new Map<string, Promise<Activation>>();
  readonly #lag = monitorEventLoopDelay({ resolution: 10 });
  readonly #startedAt = Date.now();
  #devices: Device[] = [];
  #kernels: typeof import('@stitch/kernels') | undefined;
  #probeError: string | undefined;
  #calibrated: (Calibration & { measuredAt: number }) | undefined;
  #control: Subscription | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastBeat = performance.now();
  #closed = false;

  constructor(cluster: Cluster, options: NodeOptions) {
    const p = cluster.parts;
    this.#cluster = cluster;
    this.#options = options;
    this.id = checkToken(
      'node id',
      options.id ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${nuid.next().slice(-6)}`,
    );
    this.nc = p.nc;
    this.js = p.js;
    this.jsm = p.jsm;
    this.names = p.names;
    this.stateKv = p.stateKv;
    this.limits = p.limits;
    this.log = p.log;
    this.directory = cluster.directory;
  }

  get nodeId(): string {
    return this.id;
  }

  ref(data: ActorRefData): ActorRef {
    return this.#cluster.ref(data);
  }

  forget(activation: Activation): void {
    if (this.#activations.get(activation.key) === activation) this.#activations.delete(activation.key);
  }

  async start(): Promise<void> {
    this.#devices = await this.#probe();
    this.#lag.enable();
    this.#control = this.nc.subscribe(this.names.nodeControl(this.id), {
      callback: (err, m) => {
        if (!err) void this.#onControl(m);
      },
    });
    const revision = await this.#beat();
    this.#emit({ kind: 'join', nodeId: this.id, revision, at: Date.now() });
    const every = this.#options.heartbeatMs ?? Math.floor(this.#cluster.parts.deadAfterMs / 3);
    this.#heartbeat = setInterval(() => {
      this.#beat().catch((err) =>
        this.log('warn', 'heartbeat failed', { node: this.id, error: String(err) }),
      );
    }, every);
    void this.#calibrate();
  }

  /** Activates `type`/`id` here after claiming it in the directory. Spawning a live actor again is a no-op. */
  async spawn(type: string, id: string): Promise<Activation> {
    const def = this.#cluster.actorType(type);
    if (!def) {
      throw new InvalidOptions(
        `node ${this.id} has no actor type "${type}"; pass it in startNode({ actors }) or register() it`,
      );
    }
    const key = this.names.key(type, checkToken('actor id', id));
    const live = this.#activations.get(key) ?? this.#starting.get(key);
    if (live) return live;
    const starting = (async () => {
      const claim = await this.directory.claim(key, this.id);
      const activation = new Activation(this, def, id, claim);
      try {
        await activation.start();
      } catch (err) {
        await this.directory.release(key, claim);
        throw err;
      }
      this.#activations.set(key, activation);
      return activation;
    })();
    this.#starting.set(key, starting);
    try {
      return await starting;
    } finally {
      this.#starting.delete(key);
    }
  }

  async stopActor(type: string, id: string): Promise<void> {
    await this.#activations.get(this.names.key(type, id))?.stop('stopped on request');
  }

  inspect(): { nodeId: string; actors: ActorInspection[] } {
    return { nodeId: this.id, actors: [...this.#activations.values()].map((a) => a.inspect()) };
  }

  /** Builds the current capability record (also what each heartbeat writes). */
  record(): CapabilityRecord {
    const actors = [...this.#activations.values()].map((a) => a.inspect().mailbox);
    const sinceBeat = performance.now() - this.#lastBeat;
    const every = this.#options.heartbeatMs ?? this.#cluster.parts.deadAfterMs / 3;
    // A timer that fired late by more than the histogram saw means the loop was blocked meanwhile.
    const max = Math.max(this.#lag.max / 1e6, sinceBeat - every);
    const p99 = this.#lag.percentile(99) / 1e6;
    return {
      nodeId: this.id,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      heartbeatAt: Date.now(),
      devices: this.#devices,
      memory: { totalBytes: totalmem(), freeBytes: freemem(), rssBytes: process.memoryUsage.rss() },
      labels: this.#options.labels ?? {},
      actorTypes: this.#cluster.actorTypes,
      load: {
        actors: actors.length,
        queued: actors.reduce((s, m) => s + m.depth, 0),
        running: actors.reduce((s, m) => s + m.running, 0),
        loadAvg1: loadavg()[0] ?? 0,
      },
      eventLoopLagMs: { p99: round(p99), max: round(max) },
      healthy: max < (this.#options.stallMs ?? 1000),
      ...(this.#calibrated ? { calibrated: this.#calibrated } : {}),
      ...(this.#probeError ? { probeError: this.#probeError } : {}),
    };
  }

  /** Stops every actor (each drains its mailbox and persists its snapshot), then leaves the cluster. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    await this.#control?.drain().catch(() => undefined);
    await Promise.all([...this.#activations.values()].map((a) => a.stop('node closing')));
    const kv = this.#cluster.parts.nodesKv;
    const e = await kv.get(this.id).catch(() => null);
    await kv.delete(this.id).catch(() => undefined);
    this.#emit({ kind: 'leave', nodeId: this.id, revision: e?.revision ?? 0, at: Date.now() });
    this.#lag.disable();
    await this.nc.flush().catch(() => undefined);
  }

  async #beat(): Promise<number> {
    const rec = this.record();
    this.#lag.reset();
    this.#lastBeat = performance.now();
    return this.#cluster.parts.nodesKv.put(this.id, JSON.stringify(rec));
  }

  #emit(ev: MembershipEvent): void {
    this.nc.publish(this.names.membership, JSON.stringify(ev));
  }

  async #onControl(m: Msg): Promise<void> {
    let out: Uint8Array;
    try {
      const req = decode(m.data) as { op?: unknown; type?: unknown; id?: unknown };
      const type = checkToken('type', req.type ?? 'none');
      if (req.op === 'spawn') {
        const a = await this.spawn(type, checkToken('id', req.id));
        out = encode({ type, id: a.id, node: this.id, epoch: a.claim.epoch });
      } else if (req.op === 'stop') {
        await this.stopActor(type, checkToken('id', req.id));
        out = encode(null);
      } else if (req.op === 'inspect') {
        out = encode(this.inspect());
      } else {
        throw new InvalidOptions(
          `unknown node control op ${JSON.stringify(req.op)}; use spawn, stop or inspect`,
        );
      }
    } catch (err) {
      const f = failure(err);
      if (!m.reply || f.ok) return;
      const h = natsHeaders();
      h.set(H.errorCode, f.code);
      h.set(H.errorName, f.name);
      this.nc.publish(m.reply, Buffer.from(f.message), { headers: h });
      return;
    }
    if (m.reply) this.nc.publish(m.reply, out);
  }

  // @stitch/kernels (and its native addon) is loaded here, not imported statically, so that a host
  // where it cannot load still runs a node: the record then carries probeError and only virtual devices.
  async #probe(): Promise<Device[]> {
    const devices: Device[] = [];
    try {
      this.#kernels = await import('@stitch/kernels');
      const p = this.#kernels.probeHost();
      const features = Object.entries(p.features)
        .filter(([, on]) => on)
        .map(([f]) => f);
      devices.push({
        kind: 'cpu',
        model: p.cpuModel,
        arch: p.arch,
        cores: p.logicalCores,
        features,
        x86Level: p.x86Level,
      });
      for (let index = 0; index < (p.cuda.driverLoaded ? p.cuda.deviceCount : 0); index++)
        devices.push({ kind: 'cuda', index });
    } catch (err) {
      this.#probeError = (err as Error).message;
      this.log('warn', 'hardware probe failed; the node advertises no cpu/cuda devices', {
        error: this.#probeError,
      });
    }
    for (const v of this.#options.virtual ?? []) {
      devices.push({ kind: `virtual:${checkToken('virtual device id', v)}`, catalogId: v, modelled: true });
    }
    return devices;
  }

  async #calibrate(): Promise<void> {
    const cpu = this.#devices.find((d) => d.kind === 'cpu');
    const kernels = this.#kernels;
    if (this.#options.calibrate === false || !kernels || !cpu || cpu.kind !== 'cpu' || !cpu.x86Level) return;
    try {
      const result = await kernels.calibrate(cpu.x86Level as Calibration['target']);
      this.#calibrated = { ...result, measuredAt: Date.now() };
    } catch (err) {
      this.log('warn', 'calibration failed; the capability record has no calibrated figures', {
        error: String(err),
      });
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
