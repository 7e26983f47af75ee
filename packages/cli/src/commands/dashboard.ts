import { checkAccess, startDashboard } from '@stitch/serve';
import type { Command } from 'commander';
import { addConnectionOptions, type ConnectionFlags, connectionFromFlags } from '../connection-options.js';
import { clusterToServe } from '../local-cluster.js';
import { firstSignal } from '../signals.js';
import { API_KEY_ENV, portOf } from './serve.js';

interface DashboardFlags extends ConnectionFlags {
  port: string;
  host: string;
  name: string;
  deploy?: string;
  apiKey?: string;
  coordinator: string;
  refreshMs: string;
}

export function registerDashboard(program: Command): void {
  const command = program
    .command('dashboard')
    .description(
      'Live dashboard in the browser: nodes with devices and load, agent graphs coloured by placement, ' +
        'migrations, $/hour; with no --nats, on an embedded cluster with local nodes running the sample graph',
    );
  addConnectionOptions(command)
    .option('--port <port>', 'HTTP port (0: any free one)', '8081')
    .option('--host <host>', 'address to bind; beyond loopback an --api-key is required', '127.0.0.1')
    .option('--name <cluster>', 'cluster name', 'dashboard')
    .option(
      '--deploy <graph.mlir>',
      'deploy this graph first (default without --nats: the sample tool agent)',
    )
    .option('--api-key <key>', `key the page's data requests need, as ?key= (or $${API_KEY_ENV})`)
    .option('--coordinator <id>', 'coordinator actor (stitch-coordinator/<id>) asked for migrations', 'main')
    .option('--refresh-ms <ms>', 'how often the state is read and pushed to open pages', '1000')
    .action(async (flags: DashboardFlags) => {
      const port = portOf(flags.port);
      const connection = connectionFromFlags(flags);
      const apiKey = flags.apiKey ?? process.env[API_KEY_ENV];
      checkAccess(flags.host, apiKey); // before minutes of start-up, not after
      const say = (line: string) => process.stderr.write(`${line}\n`);
      const stopped = firstSignal();
      const served = await clusterToServe(connection, flags.name, flags.coordinator, flags.deploy, say);
      try {
        const dashboard = await startDashboard({
          cluster: served.cluster,
          host: flags.host,
          port,
          apiKey,
          coordinatorId: served.coordinatorId,
          refreshMs: Number(flags.refreshMs),
        });
        process.stdout.write(`dashboard ${dashboard.url}/ (cluster "${served.cluster.name}")\n`);
        await stopped;
        await dashboard.close();
      } finally {
        await served.close();
      }
    });
}
