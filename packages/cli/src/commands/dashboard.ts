import { startDashboard } from '@stitch/serve';
import type { Command } from 'commander';
import { addConnectionOptions } from '../connection-options.js';
import { API_KEY_ENV, type HttpCommandFlags, runHttpCommand } from './serve.js';

interface DashboardFlags extends HttpCommandFlags {
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
    .action((flags: DashboardFlags) =>
      runHttpCommand(
        flags,
        (served) => startDashboard({ ...served, refreshMs: Number(flags.refreshMs) }),
        (url, cluster) => `dashboard ${url}/ (cluster "${cluster}")`,
      ),
    );
}
