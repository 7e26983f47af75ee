import type { Cluster } from '@stitch/runtime';
import { checkAccess, startApiServer } from '@stitch/serve';
import { observeRequests } from '@stitch/telemetry';
import type { Command } from 'commander';
import { addConnectionOptions, type ConnectionFlags, connectionFromFlags } from '../connection-options.js';
import { clusterToServe } from '../local-cluster.js';
import { portOf } from '../port.js';
import { firstSignal } from '../signals.js';
import { addTelemetryOptions, type TelemetryFlags, telemetryFromFlags } from '../telemetry-options.js';

/** The flags `serve` and `dashboard` share. */
export interface HttpCommandFlags extends ConnectionFlags {
  port: string;
  host: string;
  name: string;
  deploy?: string;
  apiKey?: string;
  coordinator: string;
}

interface ServeFlags extends HttpCommandFlags, TelemetryFlags {
  maxInFlight: string;
  bodyLimit: string;
}

export const API_KEY_ENV = 'STITCH_SERVE_API_KEY';

interface Served {
  cluster: Cluster;
  host: string;
  port: number;
  apiKey: string | undefined;
  coordinatorId: string;
}

/**
 * What `serve` and `dashboard` do around their server: check access before minutes of start-up,
 * get the cluster to serve (local or given), start the server, print `banner`, and on SIGINT/SIGTERM
 * close the server and then the cluster.
 */
export async function runHttpCommand(
  flags: HttpCommandFlags,
  start: (s: Served) => Promise<{ url: string; close(): Promise<void> }>,
  banner: (url: string, cluster: string) => string,
  stoppingLine?: string,
): Promise<void> {
  const port = portOf(flags.port);
  const connection = connectionFromFlags(flags);
  const apiKey = flags.apiKey ?? process.env[API_KEY_ENV];
  checkAccess(flags.host, apiKey);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const stopped = firstSignal();
  const served = await clusterToServe(connection, flags.name, flags.coordinator, flags.deploy, say);
  try {
    const server = await start({
      cluster: served.cluster,
      host: flags.host,
      port,
      apiKey,
      coordinatorId: served.coordinatorId,
    });
    process.stdout.write(`${banner(server.url, served.cluster.name)}\n`);
    await stopped;
    if (stoppingLine) say(stoppingLine);
    await server.close();
  } finally {
    await served.close();
  }
}

export function registerServe(program: Command): void {
  const command = program
    .command('serve')
    .description(
      "OpenAI-compatible HTTP API over the cluster's deployments (one model each): POST /v1/chat/completions, " +
        'GET /v1/models; with no --nats, an embedded cluster with local nodes running the given or the sample graph',
    );
  addTelemetryOptions(addConnectionOptions(command))
    .requiredOption('--port <port>', 'HTTP port (0: any free one)')
    .option('--host <host>', 'address to bind; beyond loopback an --api-key is required', '127.0.0.1')
    .option('--name <cluster>', 'cluster name', 'serve')
    .option(
      '--deploy <graph.mlir>',
      'deploy this graph through the coordinator first (default without --nats: the sample tool agent)',
    )
    .option('--api-key <key>', `bearer token clients must send (or $${API_KEY_ENV})`)
    .option(
      '--coordinator <id>',
      'coordinator actor (stitch-coordinator/<id>) that deploys and learns from requests',
      'main',
    )
    .option('--max-in-flight <n>', 'requests in flight per model; more get 429 with Retry-After', '64')
    .option('--body-limit <bytes>', 'largest request body', String(1 << 20))
    .action(async (flags: ServeFlags) => {
      const telemetry = await telemetryFromFlags('stitch-serve', flags);
      await runHttpCommand(
        flags,
        (served) =>
          startApiServer({
            ...served,
            maxInFlight: Number(flags.maxInFlight),
            bodyLimitBytes: Number(flags.bodyLimit),
            ...(telemetry.metricsUrl !== undefined ? { onRequest: observeRequests() } : {}),
          }),
        (url, cluster) => `serving ${url}/v1 (cluster "${cluster}")`,
        'stitch serve stopping',
      );
      await telemetry.shutdown();
    });
}
