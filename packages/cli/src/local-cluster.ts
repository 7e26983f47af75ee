// An embedded cluster on this machine, as `stitch demo`, `stitch serve` and `stitch dashboard` start
// it: a nats-server, three `stitch node` processes (real cpu, modelled h100 and gaudi3) hosting the
// operator actors, and a coordinator (actor stitch-coordinator/main) in this process.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Coordinator, type CoordinatorOptions, coordinatorActor, type Deployment } from '@stitch/agents';
import { PARSE_LIMITS } from '@stitch/ir';
import {
  type ActorRef,
  type Cluster,
  connectCluster,
  type EmbeddedNats,
  NoNodeAvailable,
  startEmbeddedNats,
} from '@stitch/runtime';
import type { ConnectionFields } from './connection-options.js';
import { readInputText } from './input-file.js';

/** The sample graph of an agent (`tool`, deployed when none is given, or `voice`), at tiny-llama size. */
export function sampleName(agent: 'tool' | 'voice' = 'tool'): string {
  return `${agent}-agent.tiny-llama.mlir`;
}

export function samplePath(agent: 'tool' | 'voice' = 'tool'): string {
  return fileURLToPath(new URL(`../samples/${sampleName(agent)}`, import.meta.resolve('@stitch/ir')));
}

export interface LocalCluster {
  nats: EmbeddedNats;
  /** The node processes by node id. */
  children: Map<string, ChildProcess>;
  cluster: Cluster;
  coordinator: Coordinator;
  /** stitch-coordinator/main, which takes `deploy`, `observe` and `status`. */
  coordinatorRef: ActorRef<ReturnType<typeof coordinatorActor>>;
  /** Stops the coordinator, this connection, every node (SIGTERM, SIGKILL past 10 s), then the server. */
  close(): Promise<void>;
}

type Say = (line: string) => void;

/** One `stitch node` process of a local cluster: its id and its extra arguments. */
export interface LocalNode {
  id: string;
  args: string[];
}

/** The demo's nodes: a real cpu node (calibrated at start) and two modelled accelerators. */
export const DEMO_NODES: readonly LocalNode[] = [
  { id: 'node-cpu', args: [] },
  { id: 'node-h100', args: ['--virtual', 'h100', '--no-calibrate'] },
  { id: 'node-gaudi3', args: ['--virtual', 'gaudi3', '--no-calibrate'] },
];

export interface LocalClusterOptions {
  /** @default DEMO_NODES */
  nodes?: readonly LocalNode[];
  /** Options of the coordinator this process runs (its `log` goes to `say`). */
  coordinator?: Omit<CoordinatorOptions, 'log'>;
  /** Aborting it ends the start: what was started is stopped, and the start fails with its reason. */
  signal?: AbortSignal;
}

export async function startLocalCluster(
  name: string,
  say: Say,
  options: LocalClusterOptions = {},
): Promise<LocalCluster> {
  const nodes = options.nodes ?? DEMO_NODES;
  const signal = options.signal;
  const nats = await startEmbeddedNats();
  const children = new Map<string, ChildProcess>();
  let cluster: Cluster | undefined;
  let coordinator: Coordinator | undefined;
  const close = async () => {
    await coordinator?.stop().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    await stopNodes(children, say);
    await nats.stop();
    say(
      `all processes stopped (nats-server pid ${nats.pid}, nodes ${[...children.values()].map((c) => c.pid).join(', ')})`,
    );
  };
  try {
    say(`embedded nats-server ${nats.url} (pid ${nats.pid}, JetStream on)`);
    signal?.throwIfAborted();
    for (const n of nodes) startNode(nats.url, name, children, n.id, n.args, say);
    cluster = await connectCluster({ nats: nats.url, name });
    signal?.throwIfAborted();
    coordinator = new Coordinator(cluster, { ...options.coordinator, log: (l) => say(`coordinator: ${l}`) });
    const def = coordinatorActor(coordinator);
    await cluster.startNode({ id: 'coordinator', actors: [def], labels: { role: 'coordinator' } });
    await waitForNodes(cluster, nodes, say, signal);
    await coordinator.start();
    signal?.throwIfAborted();
    const coordinatorRef = await cluster.spawn(def, { id: 'main' });
    signal?.throwIfAborted();
    return { nats, children, cluster, coordinator, coordinatorRef, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function startNode(
  url: string,
  name: string,
  children: Map<string, ChildProcess>,
  id: string,
  extra: string[],
  say: Say,
): void {
  const actors = fileURLToPath(import.meta.resolve('@stitch/agents/actors'));
  const args = [
    fileURLToPath(new URL('./bin.js', import.meta.url)),
    'node',
    '--nats',
    url,
    '--name',
    name,
    '--id',
    id,
  ];
  // A stdin pipe the node stops on when it ends: this process's exit closes it, even a SIGKILL, so
  // no node outlives the process that started it (its nats-server has such a watchdog too).
  const child = spawn(process.execPath, [...args, '--actors', actors, '--stop-when-stdin-ends', ...extra], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin?.on('error', () => undefined); // nothing is written; a node gone first is no error
  const prefix = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) say(`  [${id}] ${line}`);
  };
  child.stdout?.on('data', prefix);
  child.stderr?.on('data', prefix);
  children.set(id, child);
  say(`started ${id} (pid ${child.pid})${extra.length ? ` ${extra.join(' ')}` : ''}`);
}

async function waitForNodes(
  cluster: Cluster,
  nodes: readonly LocalNode[],
  say: Say,
  signal: AbortSignal | undefined,
): Promise<void> {
  const deadline = Date.now() + 45_000;
  const ids = nodes.map((n) => n.id);
  const calibrating = nodes.filter((n) => !n.args.includes('--no-calibrate')).map((n) => n.id);
  for (;;) {
    signal?.throwIfAborted();
    const records = await cluster.nodes();
    const up = ids.filter((id) => records.some((r) => r.nodeId === id));
    const calibrated = records.filter((r) => calibrating.includes(r.nodeId) && r.calibrated);
    // A cpu node's calibration feeds the planner; give it a while, then plan with catalog peaks.
    if (
      up.length === ids.length &&
      (calibrated.length === calibrating.length || Date.now() > deadline - 25_000)
    ) {
      for (const r of calibrated) {
        const c = r.calibrated!;
        say(
          `${r.nodeId} calibrated: ${c.matmulGflops.toFixed(1)} GFLOP/s matmul, ${c.matvecGbps.toFixed(1)} GB/s matvec (${c.target}, measured)`,
        );
      }
      return;
    }
    if (Date.now() > deadline)
      throw new NoNodeAvailable(
        `the local nodes did not all join within 45 s (up: ${up.join(', ') || 'none'})`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** SIGTERM every node still running (SIGKILL past 10 s); says how each node ended. */
async function stopNodes(children: Map<string, ChildProcess>, say: Say): Promise<void> {
  const ends = await Promise.all(
    [...children].map(
      ([id, c]) =>
        new Promise<string>((done) => {
          const ended = () => `${id} ${c.exitCode !== null ? `exit ${c.exitCode}` : c.signalCode}`;
          if (c.exitCode !== null || c.signalCode !== null) return done(ended());
          const kill = setTimeout(() => c.kill('SIGKILL'), 10_000);
          c.once('exit', () => {
            clearTimeout(kill);
            done(ended());
          });
          c.kill('SIGTERM');
        }),
    ),
  );
  say(`nodes ended: ${ends.join(', ')}`);
}

export interface ServedCluster {
  cluster: Cluster;
  /** The coordinator actor's id: `main` on a local cluster. */
  coordinatorId: string;
  close(): Promise<void>;
}

/**
 * The cluster `stitch serve` and `stitch dashboard` front: the one at `connection.nats`, else a
 * local one; `deploy` (on a local cluster by default the sample) is deployed through the coordinator.
 */
export async function clusterToServe(
  connection: ConnectionFields,
  name: string,
  coordinatorId: string,
  deploy: string | undefined,
  say: Say,
): Promise<ServedCluster> {
  const local = connection.nats === undefined ? await startLocalCluster(name, say) : undefined;
  const cluster = local?.cluster ?? (await connectCluster({ name, ...connection }));
  const served = {
    cluster,
    coordinatorId: local ? 'main' : coordinatorId,
    close: () => (local ? local.close() : cluster.close()),
  };
  try {
    const graph = deploy ?? (local ? samplePath() : undefined);
    if (graph) {
      const coordinator = cluster.ref({ type: 'stitch-coordinator', id: served.coordinatorId });
      const mlir = readInputText(graph, PARSE_LIMITS.maxInputBytes, 'graph');
      const d = (await coordinator.ask({ type: 'deploy', mlir }, { timeoutMs: 120_000 })) as Deployment;
      say(`deployed ${d.name} (${graph}) by ${d.solver}: est. ${d.latencyMs.toFixed(1)} ms per request`);
    }
    return served;
  } catch (err) {
    await served.close();
    throw err;
  }
}
