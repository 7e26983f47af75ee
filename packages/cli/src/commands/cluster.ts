import { answersBucket, kvCacheBucket, memoryBucketName } from '@stitch/agents';
import { KERNEL_STORE_MAX_BYTES, kernelStoreName } from '@stitch/compiler';
import { connectCluster, InvalidOptions, initCluster, startPartitionGuard } from '@stitch/runtime';
import type { Command } from 'commander';
import { writeAuthDir } from '../auth-files.js';
import { commaList } from '../comma-list.js';
import { addConnectionOptions, type ConnectionFlags, connectionFromFlags } from '../connection-options.js';
import { CertificateAuthority, isRouteHost } from '../pki.js';
import { firstSignal } from '../signals.js';

interface ClusterGuardOptions {
  peers: string;
  probeInterval: string;
  isolatedAfter: string;
  rejoinAfter: string;
}

function msFlag(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidOptions(`${flag} takes milliseconds (a number, 0 or more), not "${value}"`);
  return n;
}

interface ClusterInitOptions extends ConnectionFlags {
  name: string;
  deadAfter: string;
  auth?: string;
  nodes?: string;
  coordinatorId: string;
  replicas?: string;
  routeHosts?: string;
}

/** How long the route CA and the route certificate `--route-hosts` makes stay valid. */
const ROUTE_CA_DAYS = 3650;
const ROUTE_CERT_DAYS = 825;

export function registerCluster(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('Set up and manage a stitch cluster on a NATS server');
  registerInit(cluster);
  registerGuard(cluster);
}

function registerInit(cluster: Command): void {
  const init = cluster
    .command('init')
    .description(
      "Create the cluster's stream and buckets where missing (idempotent); required once on a secured " +
        'server, run with a credential that may create streams and buckets. With --auth, first write ' +
        'per-principal nkey credentials and the nats-server authorization block (--nats optional then)',
    );
  addConnectionOptions(init, {
    natsHelp:
      'NATS server URL(s), comma-separated (required, except with --auth alone: then only files are written)',
  })
    .option('--name <cluster>', 'cluster name', 'default')
    .option(
      '--dead-after <ms>',
      "heartbeat window after which a silent node is dead (the nodes bucket's TTL)",
      '5000',
    )
    .option(
      '--auth <dir>',
      'write <dir>/auth.conf (nats-server authorization block) and a seed file per principal: admin.nk, coordinator.nk, client.nk, node-<id>.nk (existing seeds are kept)',
    )
    .option(
      '--replicas <n>',
      'replicas of the stream and buckets, 1-5 (default: one per server the connected server is routed to, at most 3; give it while a cluster may still be forming)',
    )
    .option('--nodes <ids>', 'with --auth: node ids, comma-separated, that get a credential each')
    .option(
      '--route-hosts <hosts>',
      "with --auth: every cluster server's route address (IP or DNS name, as in its routes), comma-separated: " +
        'writes route-ca.pem, route.pem and route-key.pem (mutual TLS between the servers, as deploy/nats/cluster.conf expects) and keeps route-ca-key.pem',
    )
    .option(
      '--coordinator-id <ids>',
      'with --auth: id of the coordinator (stitch coordinator --id); comma-separated for standbys (coordinator-<id>.nk each)',
      'main',
    )
    .action(runInit);
}

function registerGuard(cluster: Command): void {
  cluster
    .command('guard')
    .description(
      'Run a nats-server of a JetStream cluster under a partition guard: the server is stopped while this ' +
        'host cannot reach a majority of the cluster and started again once it can, so that it never ' +
        "raises Raft terms that would stall the majority's streams when the partition heals (nats-server " +
        '2.9 has no pre-vote). Exits with the server when the server exits on its own; SIGHUP is passed on',
    )
    .argument('<server...>', 'the server command line, after --: nats-server -c /etc/stitch/nats.conf')
    .requiredOption(
      '--peers <host:port,...>',
      "every server's client address; this host's own (its name or one of its addresses) is skipped, so every host can be given the same list. A refusal counts as in reach: the host answered",
    )
    .option('--probe-interval <ms>', 'how often the peers are probed', '500')
    .option(
      '--isolated-after <ms>',
      'stop the server once a majority has been out of reach this long (keep it under 4000: the shortest election timeout of nats-server)',
      '1500',
    )
    .option('--rejoin-after <ms>', 'start it again once a majority has been in reach this long', '1000')
    .action(async (server: string[], opts: ClusterGuardOptions) => {
      const [command, ...args] = server;
      const guard = startPartitionGuard({
        command: command!,
        args,
        peers: commaList(opts.peers),
        probeIntervalMs: msFlag('--probe-interval', opts.probeInterval),
        isolatedAfterMs: msFlag('--isolated-after', opts.isolatedAfter),
        rejoinAfterMs: msFlag('--rejoin-after', opts.rejoinAfter),
      });
      process.on('SIGHUP', () => guard.signalServer('SIGHUP'));
      const code = await Promise.race([guard.ended, firstSignal().then((signal) => guard.close(signal))]);
      process.exitCode = typeof code === 'number' ? code : 1;
    });
}

/**
 * `stitch cluster init`: with --auth, writes the credentials (and with --route-hosts the route
 * certificates) first; then, given --nats, makes the stream, the buckets and the object store.
 */
async function runInit(opts: ClusterInitOptions): Promise<void> {
  if (opts.nodes !== undefined && opts.auth === undefined)
    throw new InvalidOptions('--nodes goes with --auth: the node ids to make credentials for');
  if (opts.routeHosts !== undefined && opts.auth === undefined)
    throw new InvalidOptions('--route-hosts goes with --auth: the directory the route certificates go to');
  const routeHosts = commaList(opts.routeHosts ?? '');
  if (opts.routeHosts !== undefined && routeHosts.length === 0)
    throw new InvalidOptions('--route-hosts names no host');
  for (const h of routeHosts)
    if (!isRouteHost(h))
      throw new InvalidOptions(`--route-hosts: "${h}" is neither an IP address nor a DNS name`);
  if (opts.auth !== undefined) {
    writeAuth(opts, opts.auth, routeHosts);
    if (opts.nats === undefined) return;
  } else if (opts.nats === undefined) {
    throw new InvalidOptions('cluster init needs --nats: the server whose cluster to set up');
  }
  const options = {
    name: opts.name,
    deadAfterMs: Number(opts.deadAfter),
    ...(opts.replicas !== undefined ? { replicas: Number(opts.replicas) } : {}),
    ...connectionFromFlags(opts),
  };
  await initCluster(options);
  // The object store of published kernels and the agents' memory, KV-cache and answers buckets, made by the same principal.
  const admin = await connectCluster(options);
  try {
    await admin.objectStore(kernelStoreName(opts.name), { create: true, maxBytes: KERNEL_STORE_MAX_BYTES });
    await admin.kv(memoryBucketName(opts.name), { create: true, history: 1 });
    for (const bucket of [kvCacheBucket(opts.name), answersBucket(opts.name)])
      await admin.kv(bucket.name, { create: true, history: 1, ...bucket });
  } finally {
    await admin.close();
  }
  process.stdout.write(`cluster "${opts.name}" is set up on ${opts.nats}\n`);
}

/** The per-principal nkey seeds, the authorization block and the kernel publisher key in `dir`. */
function writeAuth(opts: ClusterInitOptions, dir: string, routeHosts: string[]): void {
  const nodes = commaList(opts.nodes ?? '');
  const { seeds, kernelKeys } = writeAuthDir(dir, {
    name: opts.name,
    nodes,
    coordinatorId: opts.coordinatorId,
  });
  if (routeHosts.length > 0) {
    const ca = CertificateAuthority.openOrCreate(dir, 'route-ca', ROUTE_CA_DAYS);
    const route = ca.issue('route', 'both', routeHosts, ROUTE_CERT_DAYS);
    process.stdout.write(
      `wrote ${ca.certFile}, ${route.cert} and ${route.key} for ${routeHosts.join(', ')} (valid ${ROUTE_CERT_DAYS} days; ${ca.keyFile} issues them again)\n`,
    );
  }
  process.stdout.write(
    `wrote ${dir}/auth.conf and ${Object.values(seeds).join(', ')}\n` +
      `and the kernel publisher key ${kernelKeys.privateKey} (nodes trust ${kernelKeys.publicKey} with --kernel-key)\n` +
      'include auth.conf in nats-server.conf, reload the server, then run cluster init with --nkey <admin.nk>\n',
  );
}
