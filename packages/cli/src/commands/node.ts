import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { useNodeBuckets } from '@stitch/agents';
import { calibrateCpu, pinMmapThreshold, probeDevices } from '@stitch/kernels';
import {
  type AnyActorDefinition,
  connectCluster,
  InvalidOptions,
  type SheddingOptions,
} from '@stitch/runtime';
import { observeNode } from '@stitch/telemetry';
import { type Command, Option } from 'commander';
import { addConnectionOptions, type ConnectionFlags, connectionFromFlags } from '../connection-options.js';
import { addKernelOptions, type KernelFlags, logKernelProgress, useKernelFlags } from '../kernel-options.js';
import { addLogOption, type LogFlags, logFromFlags } from '../log-options.js';
import { firstSignal, stdinEnded } from '../signals.js';
import { addTelemetryOptions, type TelemetryFlags, telemetryFromFlags } from '../telemetry-options.js';

interface NodeCommandOptions extends ConnectionFlags, LogFlags, KernelFlags, TelemetryFlags {
  name: string;
  id?: string;
  labels?: string;
  virtual?: string;
  actors?: string[];
  deadAfter: string;
  calibrate: boolean;
  drainMs: string;
  shedHeap: string;
  shedLagMs?: string;
  stopWhenStdinEnds?: boolean;
}

const PARENT_GONE = 'stdin ended' as const;
/** After its stdin ended, the most a node may take to stop; then it exits regardless. */
const PARENT_GONE_EXIT_MS = 15_000;

export function registerNode(program: Command): void {
  const command = program
    .command('node')
    .description(
      'Run a node actor: advertise this host, host actors, until SIGINT/SIGTERM (then drain: its actors move off it live; exit 0)',
    );
  addLogOption(addTelemetryOptions(addKernelOptions(addConnectionOptions(command))))
    .option('--name <cluster>', 'cluster name', 'default')
    .option('--id <nodeId>', 'node id (default: <hostname>-<pid>-<random>)')
    .option('--labels <k=v,...>', 'labels advertised in the capability record')
    .option(
      '--virtual <ids>',
      'modelled devices this node stands in for, each with its execution slots, e.g. h100:2,b200 (default 1 slot)',
    )
    .option('--actors <module...>', 'modules whose exported actor definitions this node can spawn')
    .option('--dead-after <ms>', 'heartbeat window after which a silent node is dead', '5000')
    .option('--no-calibrate', 'skip the kernel calibration at start')
    .option(
      '--drain-ms <ms>',
      'on SIGINT/SIGTERM, wait up to this long for a coordinator to move the actors off this node live; then stop the rest (0: stop at once)',
      '10000',
    )
    .option(
      '--shed-heap <fraction>',
      "load shedding: refuse new fast-mode messages while V8's old generation is fuller than this share of its limit",
      '0.9',
    )
    .option(
      '--shed-lag-ms <ms>',
      'load shedding: refuse new fast-mode messages while the event loop runs later than this (default: not watched)',
    )
    .addOption(
      new Option(
        '--stop-when-stdin-ends',
        'stop without draining when stdin ends: the parent that spawned it with a stdin pipe has exited (a local cluster)',
      ).hideHelp(),
    )
    .action(async (opts: NodeCommandOptions) => {
      // Actors' large states (a migrated KV cache) are freed and allocated again as they move: give
      // what is freed back to the OS instead of letting glibc keep it resident.
      pinMmapThreshold();
      const signalled = firstSignal();
      // A local cluster's node (stitch demo, serve, dashboard) outlives no parent, even a SIGKILLed one.
      const parent = opts.stopWhenStdinEnds ? stdinEnded() : undefined;
      // Stopping is bounded then: the parent's nats-server went with it, and nothing may hang on it.
      void parent?.ended.then(() => setTimeout(() => process.exit(1), PARENT_GONE_EXIT_MS).unref());
      const stopped = parent ? Promise.race([signalled, parent.ended.then(() => PARENT_GONE)]) : signalled;
      try {
        await runNode(opts, stopped);
      } finally {
        parent?.release();
      }
    });
}

/** NodeOptions.shedding from --shed-heap and --shed-lag-ms, checked before anything connects. */
function sheddingFromFlags(opts: NodeCommandOptions): SheddingOptions {
  const heapFraction = Number(opts.shedHeap);
  if (!(heapFraction > 0 && heapFraction <= 1))
    throw new InvalidOptions(`--shed-heap must be above 0 and at most 1, found "${opts.shedHeap}"`);
  if (opts.shedLagMs === undefined) return { heapFraction };
  const lagMs = Number(opts.shedLagMs);
  if (!(Number.isFinite(lagMs) && lagMs >= 50))
    throw new InvalidOptions(`--shed-lag-ms must be at least 50 (ms), found "${opts.shedLagMs}"`);
  return { heapFraction, lagMs };
}

async function runNode(
  opts: NodeCommandOptions,
  stopped: Promise<NodeJS.Signals | typeof PARENT_GONE>,
): Promise<void> {
  const shedding = sheddingFromFlags(opts);
  const telemetry = await telemetryFromFlags('stitch-node', opts);
  try {
    const connection = connectionFromFlags(opts);
    const labels = parseLabels(opts.labels);
    const actors = await loadActors(opts.actors ?? []);
    const cluster = await connectCluster({
      name: opts.name,
      deadAfterMs: Number(opts.deadAfter),
      log: logFromFlags(opts),
      ...connection,
    });
    // Whatever fails from here on, the connection is closed: left open, it would keep the process
    // running after the error (and swallow the first SIGTERM).
    try {
      // Memory ops hosted here use this node's connection (its credentials), not one of their own.
      // The ops' buckets (memory, KV caches) on the node's own connection. Opened first: on a secured
      // server they exist (cluster init) and a node may not create streams.
      useNodeBuckets(cluster.name, async (bucket) => {
        try {
          const kv = await cluster.kv(bucket.name);
          await kv.status(); // opening is lazy: this is what fails when the bucket is missing
          return kv;
        } catch {
          return cluster.kv(bucket.name, { create: true, history: 1, ...bucket });
        }
      });
      logKernelProgress((line) => process.stderr.write(`${line}\n`));
      const kernels = await useKernelFlags(cluster, opts, (line) => process.stderr.write(`${line}\n`));
      if (kernels) process.stdout.write(`${kernels}\n`);
      const node = await cluster.startNode({
        labels,
        actors,
        probe: probeDevices,
        ...(opts.calibrate ? { calibrate: calibrateCpu } : {}),
        virtual: opts.virtual ? opts.virtual.split(',').filter(Boolean) : [],
        ...(opts.id ? { id: opts.id } : {}),
        shedding,
      });
      observeNode(node);
      const devices = node
        .record()
        .devices.map((d) => d.kind)
        .join(', ');
      process.stdout.write(
        `node ${node.id} joined cluster "${cluster.name}" at ${cluster.url}; devices: ${devices}; ` +
          `actor types: ${cluster.actorTypes.join(', ') || '(none)'}\n`,
      );
      const why = await stopped;
      if (why === PARENT_GONE) {
        // The parent took its coordinator and nats-server with it: there is nowhere to drain to, and
        // whoever read this process's output is gone (a failed write must not end the close).
        process.stderr.on('error', () => undefined);
        process.stderr.write(`node ${node.id}: stdin ended (its parent exited); leaving\n`);
        return;
      }
      const drainMs = Number(opts.drainMs);
      if (Number.isFinite(drainMs) && drainMs > 0) {
        process.stdout.write(`node ${node.id} draining: asking for its actors to be moved off it\n`);
        const left = await node.drain(drainMs);
        if (left > 0) process.stdout.write(`node ${node.id}: ${left} actor(s) not moved; stopping them\n`);
      }
      process.stdout.write(`node ${node.id} leaving\n`);
    } finally {
      await cluster.close();
    }
  } finally {
    await telemetry.shutdown();
  }
}

function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of (text ?? '').split(',').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InvalidOptions(`--labels must be k=v pairs separated by commas (got "${pair}")`);
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

/** Every export of each module that looks like an actor definition (made by defineActor). */
async function loadActors(modules: string[]): Promise<AnyActorDefinition[]> {
  const defs: AnyActorDefinition[] = [];
  for (const file of modules) {
    const mod = (await import(pathToFileURL(resolve(file)).href)) as Record<string, unknown>;
    const found = Object.values(mod).filter(
      (v): v is AnyActorDefinition =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as { type?: unknown }).type === 'string' &&
        'handlers' in v,
    );
    if (found.length === 0)
      throw new InvalidOptions(`--actors ${file} exports no actor definitions (made with defineActor)`);
    defs.push(...found);
  }
  return defs;
}
