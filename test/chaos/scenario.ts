// One chaos scenario from start to teardown: three hosts (h1-h3), each with a nats-server of one
// JetStream cluster; stitch nodes hosting Account on h1 and h2; the load client on h3. The fault is
// injected `faultAfterMs` into the load and healed `holdMs` later; the client's records and the
// accounts' counters give the result. Every process and namespace is gone when it returns or throws.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { NatsCluster } from '../fixtures/hosts/nats-cluster.js';
import { type HostProcess, Hosts } from '../fixtures/hosts/netns.js';
import type { CoordinatorConfig } from './coordinator-process.js';
import type { LoadConfig } from './load-process.js';
import { type RequestRecord, type ScenarioResult, summarize } from './measure.js';
import type { NodeConfig } from './node-process.js';

const NODE = fileURLToPath(new URL('./node-process.ts', import.meta.url));
const LOAD = fileURLToPath(new URL('./load-process.ts', import.meta.url));
const COORDINATOR = fileURLToPath(new URL('./coordinator-process.ts', import.meta.url));
/** Where each stitch node runs; the client runs on h3. */
export const NODE_HOSTS = { n1: 'h1', n2: 'h2' } as const;
const CLIENT_HOST = 'h3';

export interface World {
  /** The stitch cluster's name. */
  cluster: string;
  hosts: Hosts;
  nats: NatsCluster;
  nodes: Map<string, HostProcess>;
  /** Starts (or restarts, same id) a node process and waits until it serves; `runtime`: another build. */
  startNode(id: keyof typeof NODE_HOSTS, opts?: Pick<NodeConfig, 'runtime'>): Promise<void>;
  /** A scratch directory of the run, removed with it. */
  dir: string;
  coordinators: Map<string, HostProcess>;
  /** Starts a coordinator process named `name` on `host` and waits until it runs (and deployed, if asked). */
  startCoordinator(
    name: string,
    host: string,
    opts: Pick<CoordinatorConfig, 'leaseMs' | 'deploy'>,
  ): Promise<void>;
  /** Fields a scenario adds to its JSON line (e.g. leader-kill's `takeover_ms`). */
  report: Record<string, number | string>;
}

export interface Scenario {
  name: string;
  /** What the fault is, for the table. */
  what: string;
  /** Routes through the impairment proxies. */
  proxied?: boolean;
  /** The client's ask timeout here. */
  timeoutMs?: number;
  /** A first answer slower than this counts as disrupted (default: from the steady state, see measure.ts). */
  slowMs?: number;
  /** The nodes host the agent operators too (for a coordinator's deployment). */
  operators?: boolean;
  /** Runs once the nodes serve, before the load starts. */
  setup?(w: World): Promise<void>;
  fault(w: World): Promise<void>;
  heal(w: World): Promise<void>;
}

export interface LoadShape {
  requests: number;
  rate: number;
  actors: number;
  faultAfterMs: number;
  holdMs: number;
  /** Default ask timeout (a scenario may set its own). */
  timeoutMs: number;
  /** A request not answered after this long is counted failed. */
  giveUpMs: number;
}

/** The runtime's default heartbeat window. */
const DEAD_AFTER_MS = 5000;

/** What a finished scenario started (every pid) and what of its hosts still exists (should be nothing). */
export interface Leftovers {
  pids: number[];
  names: string[];
}

export function waitForLine(p: HostProcess, text: string, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return (async () => {
    while (!p.output().stdout.includes(text)) {
      const code = await Promise.race([p.exited, delay(50, undefined)]);
      // The line may have come with the exit: look again before calling it missing.
      if (code !== undefined && !p.output().stdout.includes(text))
        throw new Error(`${what} exited (${code}) before "${text}": ${p.output().stderr.slice(-2000)}`);
      if (Date.now() > end) throw new Error(`${what}: no "${text}" within ${ms} ms`);
    }
  })();
}

export async function runScenario(
  s: Scenario,
  shape: LoadShape,
  /** Where to write each scenario's raw records and counters (`<name>.json`), if anywhere. */
  keepDir?: string,
  /** Each nats-server under `stitch cluster guard`, as deploy/ runs them (false: bare, for comparison). */
  guarded = true,
): Promise<ScenarioResult & { errors: Record<string, number>; left: Leftovers }> {
  const cluster = `chaos_${s.name.replace(/[^a-z0-9]/g, '_')}`;
  const dir = mkdtempSync(join(tmpdir(), 'stitch-chaos-'));
  const hosts = new Hosts(['h1', 'h2', 'h3']);
  let nats: NatsCluster | undefined;
  let result: ScenarioResult;
  let errors: Record<string, number>;
  /** Every process started on the hosts (nodes and coordinators, restarts included; the load client), for `keepDir`. */
  const started: [string, HostProcess][] = [];
  try {
    nats = await NatsCluster.start(hosts, { proxied: s.proxied === true, guarded });
    const n = nats;
    const nodes = new Map<string, HostProcess>();
    const coordinators = new Map<string, HostProcess>();
    const world: World = {
      cluster,
      hosts,
      nats: n,
      nodes,
      coordinators,
      report: {},
      dir,
      async startNode(id, opts) {
        const host = NODE_HOSTS[id];
        const config: NodeConfig = {
          urls: n.urls(host),
          cluster,
          nodeId: id,
          deadAfterMs: DEAD_AFTER_MS,
          operators: s.operators === true,
          ...opts,
        };
        const p = hosts.spawn(host, process.execPath, [
          '--import',
          '@stitch/typescript-loader',
          NODE,
          JSON.stringify(config),
        ]);
        nodes.set(id, p);
        started.push([id, p]);
        await waitForLine(p, 'ready', `node ${id}`, 30_000);
      },
      async startCoordinator(name, host, opts) {
        const config: CoordinatorConfig = { urls: n.urls(host), cluster, name, ...opts };
        const p = hosts.spawn(host, process.execPath, [
          '--import',
          '@stitch/typescript-loader',
          COORDINATOR,
          JSON.stringify(config),
        ]);
        coordinators.set(name, p);
        started.push([name, p]);
        await waitForLine(p, 'ready', `coordinator ${name}`, 120_000);
      },
    };
    for (const id of Object.keys(NODE_HOSTS) as (keyof typeof NODE_HOSTS)[]) await world.startNode(id);
    await s.setup?.(world);
    const timeoutMs = s.timeoutMs ?? shape.timeoutMs;
    const load: LoadConfig = {
      urls: n.urls(CLIENT_HOST),
      cluster,
      requests: shape.requests,
      rate: shape.rate,
      actors: shape.actors,
      timeoutMs,
      giveUpMs: shape.giveUpMs,
      out: join(dir, 'load.json'),
    };
    const client = hosts.spawn(CLIENT_HOST, process.execPath, [
      '--import',
      '@stitch/typescript-loader',
      LOAD,
      JSON.stringify(load),
    ]);
    started.push(['load client', client]);
    await waitForLine(client, 'started', 'load client', 30_000);
    await delay(shape.faultAfterMs);
    const faultAt = Date.now();
    await s.fault(world);
    await delay(Math.max(0, faultAt + shape.holdMs - Date.now()));
    const healAt = Date.now();
    await s.heal(world);
    const runMs = (shape.requests / shape.rate) * 1000 + 2 * shape.giveUpMs + 60_000;
    await waitForLine(client, 'done', 'load client', runMs);
    const out = JSON.parse(readFileSync(load.out, 'utf8')) as {
      records: RequestRecord[];
      applied: Record<string, number>[];
      errors: Record<string, number>;
      takeOvers: number;
    };
    if (keepDir) writeFileSync(join(keepDir, `${s.name}.json`), JSON.stringify({ ...out, faultAt, healAt }));
    world.report.take_overs = out.takeOvers;
    result = {
      ...summarize(s.name, out.records, out.applied, {
        faultAt,
        healAt,
        timeoutMs,
        ...(s.slowMs ? { slowMs: s.slowMs } : {}),
      }),
      ...world.report,
    };
    errors = out.errors;
  } finally {
    // The processes' output, a failed run's too: that is when it is wanted. A write that fails (no
    // such directory) is reported and the clean-up below still runs.
    if (keepDir) {
      const logs = started.map(([name, p], i) => {
        const o = p.output();
        return `=== ${name} (process ${i + 1}, ${p.host.name})\n${o.stdout}${o.stderr}`;
      });
      for (const server of nats?.servers ?? []) logs.push(`=== nats-server ${server}\n${nats!.log(server)}`);
      try {
        writeFileSync(join(keepDir, `${s.name}.log`), logs.join('\n'));
      } catch (err) {
        process.stderr.write(`could not keep ${s.name}'s logs: ${(err as Error).message}\n`);
      }
    }
    await nats?.close();
    await hosts.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { ...result, errors, left: { pids: hosts.pids, names: hosts.remaining() } };
}
