import { InvalidOptions } from '@stitch/runtime';
import { checkAccess, startApiServer } from '@stitch/serve';
import type { Command } from 'commander';
import { addConnectionOptions, type ConnectionFlags, connectionFromFlags } from '../connection-options.js';
import { clusterToServe } from '../local-cluster.js';
import { firstSignal } from '../signals.js';

interface ServeFlags extends ConnectionFlags {
  port: string;
  host: string;
  name: string;
  deploy?: string;
  apiKey?: string;
  coordinator: string;
  maxInFlight: string;
  bodyLimit: string;
}

export const API_KEY_ENV = 'STITCH_SERVE_API_KEY';

/** A TCP port from a flag, or InvalidOptions. */
export function portOf(text: string, flag = '--port'): number {
  const port = Number(text);
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535)
    throw new InvalidOptions(`${flag} must be a port number 0-65535, found "${text}"`);
  return port;
}

export function registerServe(program: Command): void {
  const command = program
    .command('serve')
    .description(
      "OpenAI-compatible HTTP API over the cluster's deployments (one model each): POST /v1/chat/completions, " +
        'GET /v1/models; with no --nats, an embedded cluster with local nodes running the given or the sample graph',
    );
  addConnectionOptions(command)
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
      const port = portOf(flags.port);
      const connection = connectionFromFlags(flags);
      const apiKey = flags.apiKey ?? process.env[API_KEY_ENV];
      checkAccess(flags.host, apiKey); // before minutes of start-up, not after
      const say = (line: string) => process.stderr.write(`${line}\n`);
      const stopped = firstSignal();
      const served = await clusterToServe(connection, flags.name, flags.coordinator, flags.deploy, say);
      try {
        const server = await startApiServer({
          cluster: served.cluster,
          host: flags.host,
          port,
          apiKey,
          coordinatorId: served.coordinatorId,
          maxInFlight: Number(flags.maxInFlight),
          bodyLimitBytes: Number(flags.bodyLimit),
        });
        process.stdout.write(`serving ${server.url}/v1 (cluster "${served.cluster.name}")\n`);
        await stopped;
        say('stitch serve stopping');
        await server.close();
      } finally {
        await served.close();
      }
    });
}
