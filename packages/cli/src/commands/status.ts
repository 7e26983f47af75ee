import { readClusterState } from '@stitch/serve';
import type { Command } from 'commander';
import { addConnectionOptions, type ConnectionFlags, withCluster } from '../connection-options.js';
import { actorsText, statusText } from '../status-text.js';

interface StatusFlags extends ConnectionFlags {
  name: string;
  coordinator: string;
  json?: boolean;
  actors?: boolean;
}

export function registerStatus(program: Command): void {
  const command = program
    .command('status')
    .description(
      "A running cluster at a glance: its nodes (devices, load, draining or shedding), each deployment's " +
        'operators and where they run, the coordinator and its latest migrations',
    );
  addConnectionOptions(command, { natsRequired: true })
    .option('--name <cluster>', 'cluster name', 'default')
    .option('--coordinator <id>', 'coordinator actor (stitch-coordinator/<id>) asked for its status', 'main')
    .option('--actors', 'also every actor on each node: status, epoch, restarts, mailbox')
    .option('--json', "the dashboard's state as JSON (every migration the coordinator keeps)")
    .action((flags: StatusFlags) =>
      withCluster(flags, async (cluster) => {
        // One reading: the dashboard's time series has a single point, and is left out.
        const { history: _history, ...state } = await readClusterState(cluster, flags.coordinator);
        const actors = flags.actors
          ? Object.fromEntries(
              await Promise.all(
                state.nodes.map(
                  async (n) => [n.id, (await cluster.inspectNode(n.id, 2000))?.actors ?? null] as const,
                ),
              ),
            )
          : undefined;
        const text = flags.json
          ? JSON.stringify(actors ? { ...state, actors } : state, null, 2)
          : [...statusText(state, flags.coordinator), ...(actors ? actorsText(actors) : [])].join('\n');
        process.stdout.write(`${text}\n`);
      }),
    );
}
