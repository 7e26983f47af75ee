import { initCluster } from '@stitch/runtime';
import type { Command } from 'commander';

interface ClusterInitOptions {
  nats: string;
  name: string;
  credentials?: string;
  user?: string;
  password?: string;
  deadAfter: string;
}

export function registerCluster(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('Set up and manage a stitch cluster on a NATS server');
  cluster
    .command('init')
    .description(
      "Create the cluster's stream and buckets where missing (idempotent); required once on a secured server",
    )
    .requiredOption('--nats <url>', 'NATS server URL(s), comma-separated')
    .option('--name <cluster>', 'cluster name', 'default')
    .option('--credentials <file>', 'NATS .creds file of an account that may create streams and buckets')
    .option(
      '--user <name>',
      'NATS user that may create streams and buckets (password: --password or $NATS_PASSWORD)',
    )
    .option('--password <password>', 'password of --user')
    .option(
      '--dead-after <ms>',
      "heartbeat window after which a silent node is dead (the nodes bucket's TTL)",
      '5000',
    )
    .action(async (opts: ClusterInitOptions) => {
      await initCluster({
        name: opts.name,
        nats: opts.nats.split(','),
        deadAfterMs: Number(opts.deadAfter),
        ...(opts.credentials ? { credentials: opts.credentials } : {}),
        ...(opts.user ? { user: opts.user, pass: opts.password ?? process.env.NATS_PASSWORD ?? '' } : {}),
      });
      process.stdout.write(`cluster "${opts.name}" is set up on ${opts.nats}\n`);
    });
}
