import { accessSync, constants } from 'node:fs';
import { type Cluster, type ConnectOptions, connectCluster, InvalidOptions } from '@stitch/runtime';
import { type Command, Option } from 'commander';
import { commaList } from './comma-list.js';

/** The NATS connection flags as commander parses them (the same on every command that connects). */
export interface ConnectionFlags {
  nats?: string;
  creds?: string;
  /** Old name of --creds on `cluster init`, kept as a hidden alias. */
  credentials?: string;
  /** File holding a user nkey seed (`SU…`), e.g. one `stitch cluster init --auth` wrote. */
  nkey?: string;
  user?: string;
  password?: string;
  token?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** The ConnectOptions fields that the connection flags set. */
export type ConnectionFields = Pick<
  ConnectOptions,
  'nats' | 'credentials' | 'nkeySeedFile' | 'user' | 'pass' | 'token' | 'tls'
>;

/**
 * Adds the NATS connection flags to a command: `--nats`, `--creds`, `--nkey`, `--user`/`--password`, `--token`
 * and `--tls-ca`/`--tls-cert`/`--tls-key`. `natsRequired` for commands that have no embedded server
 * to fall back on; `natsHelp` replaces the flag's help (`cluster init`, where --auth alone needs no server).
 */
export function addConnectionOptions(
  command: Command,
  { natsRequired = false, natsHelp }: { natsRequired?: boolean; natsHelp?: string } = {},
): Command {
  const nats = new Option(
    '--nats <urls>',
    natsHelp ??
      (natsRequired
        ? 'NATS server URL(s), comma-separated'
        : 'NATS server URL(s), comma-separated (default: start an embedded nats-server)'),
  );
  if (natsRequired) nats.makeOptionMandatory();
  return command
    .addOption(nats)
    .addOption(new Option('--creds <file>', 'NATS .creds file (user JWT and nkey seed)'))
    .addOption(new Option('--credentials <file>', 'old name of --creds').hideHelp())
    .addOption(
      new Option('--nkey <file>', 'file holding a NATS user nkey seed (SU…), e.g. from cluster init --auth'),
    )
    .addOption(new Option('--user <name>', 'NATS user (password: --password or $NATS_PASSWORD)'))
    .addOption(new Option('--password <password>', 'password of --user (prefer $NATS_PASSWORD)'))
    .addOption(new Option('--token <token>', 'NATS authorization token (prefer $NATS_TOKEN)'))
    .addOption(new Option('--tls-ca <file>', "CA certificate (PEM) that verifies the server's certificate"))
    .addOption(new Option('--tls-cert <file>', 'client certificate (PEM) for servers that verify clients'))
    .addOption(new Option('--tls-key <file>', 'private key (PEM) of --tls-cert'));
}

/**
 * Turns parsed connection flags into ConnectOptions fields, or throws InvalidOptions: `--password`
 * without `--user`, `--tls-cert` without `--tls-key` (or the reverse), more than one of `--creds`,
 * `--nkey`, `--user` and `--token`, an unreadable `--nkey` file, an unreadable TLS file, or credentials or TLS without `--nats` (the embedded
 * server is open). `$NATS_PASSWORD` is the password of `--user` when `--password` is not given;
 * `$NATS_TOKEN` is the token when no other credential is given.
 */
export function connectionFromFlags(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): ConnectionFields {
  if (flags.creds !== undefined && flags.credentials !== undefined && flags.creds !== flags.credentials)
    throw new InvalidOptions('--credentials is the old name of --creds; give only --creds');
  const creds = flags.creds ?? flags.credentials;
  if (flags.password !== undefined && flags.user === undefined)
    throw new InvalidOptions('--password needs --user: the password of which NATS user?');
  const given = [
    creds !== undefined && '--creds',
    flags.nkey !== undefined && '--nkey',
    flags.user !== undefined && '--user',
    flags.token !== undefined && '--token',
  ].filter((f): f is string => f !== false);
  if (given.length > 1)
    throw new InvalidOptions(`${given.join(' and ')} are exclusive: a NATS connection authenticates one way`);
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
    throw new InvalidOptions(
      '--tls-cert and --tls-key go together: the client certificate and its private key',
    );
  for (const [flag, file] of [
    ['--nkey', flags.nkey],
    ['--tls-ca', flags.tlsCa],
    ['--tls-cert', flags.tlsCert],
    ['--tls-key', flags.tlsKey],
  ] as const) {
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      throw new InvalidOptions(`${flag} ${file} is not readable: ${(err as Error).message}`);
    }
  }
  const token = flags.token ?? (given.length === 0 ? nonEmpty(env.NATS_TOKEN) : undefined);
  const tls =
    flags.tlsCa !== undefined || flags.tlsCert !== undefined
      ? {
          ...(flags.tlsCa !== undefined ? { caFile: flags.tlsCa } : {}),
          ...(flags.tlsCert !== undefined ? { certFile: flags.tlsCert, keyFile: flags.tlsKey } : {}),
        }
      : undefined;
  if (flags.nats === undefined) {
    const needsServer = [
      ...given,
      ...(flags.tlsCa !== undefined ? ['--tls-ca'] : []),
      ...(flags.tlsCert !== undefined ? ['--tls-cert', '--tls-key'] : []),
    ];
    if (needsServer.length > 0)
      throw new InvalidOptions(
        `${needsServer.join(', ')} given without --nats: without --nats an open embedded nats-server is started, which takes no credentials or TLS`,
      );
    return {};
  }
  const urls = commaList(flags.nats);
  if (urls.length === 0) throw new InvalidOptions('--nats needs at least one server URL');
  return {
    nats: urls,
    ...(creds !== undefined ? { credentials: creds } : {}),
    ...(flags.nkey !== undefined ? { nkeySeedFile: flags.nkey } : {}),
    ...(flags.user !== undefined
      ? { user: flags.user, pass: flags.password ?? nonEmpty(env.NATS_PASSWORD) ?? '' }
      : {}),
    ...(token !== undefined ? { token } : {}),
    ...(tls ? { tls } : {}),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Runs `fn` on a connection to cluster `name` made from the connection flags, closed when it is done
 * (a command that reads or asks something of a running cluster and exits: status, drain).
 */
export async function withCluster<T>(
  flags: ConnectionFlags & { name: string },
  fn: (cluster: Cluster) => Promise<T>,
): Promise<T> {
  const cluster = await connectCluster({
    name: flags.name,
    log: () => undefined,
    ...connectionFromFlags(flags),
  });
  try {
    return await fn(cluster);
  } finally {
    await cluster.close();
  }
}
