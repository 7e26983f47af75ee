import { initCluster } from '@stitch/runtime';
import type { Command } from 'commander';
import { addConnectionOptions, type ConnectionFlags, connectionFromFlags } from '../connection-options.js';

interface ClusterInitOptions extends ConnectionFlags {
  nats: string;
  name: string;
  deadAfter: string;
}

export function registerCluster(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('Set up and manage a stitch cluster on a NATS server');
  const init = cluster
    .command('init')
    .description(
      "Create the cluster's stream and buckets where missing (idempotent); required once on a secured " +
        'server, run with a credential that may create streams and buckets',
    );
  addConnectionOptions(init, { natsRequired: true })
    .option('--name <cluster>', 'cluster name', 'default')
    .option(
      '--dead-after <ms>',
      "heartbeat window after which a silent node is dead (the nodes bucket's TTL)",
      '5000',
    )
    .action(async (opts: ClusterInitOptions) => {
      await initCluster({
        name: opts.name,
        deadAfterMs: Number(opts.deadAfter),
        ...connectionFromFlags(opts),
      });
      process.stdout.write(`cluster "${opts.name}" is set up on ${opts.nats}\n`);
    });
}
