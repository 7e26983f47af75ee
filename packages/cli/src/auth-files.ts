// `stitch cluster init --auth <dir>`: one static nkey user per principal, its seed in `<dir>/<name>.nk`
// (mode 0600) and every public key with its permissions in `<dir>/auth.conf`; and the kernel
// publisher's signing key pair (`kernel-publisher.pem`, `.pub.pem`). Static nkeys, not JWT
// operator mode: nothing to run beside nats-server (no resolver, no account server), and the block
// works in the config of Debian's nats-server 2.9.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUser, fromSeed } from '@nats-io/nkeys';
import { generatePublisherKey } from '@stitch/compiler';
import { InvalidOptions } from '@stitch/runtime';
import { type AuthUser, accountsBlock, type Role, rolePermissions } from './auth-config.js';
import { MAX_KEY_FILE_BYTES, readInputText } from './input-file.js';

export interface AuthDirOptions {
  /** Cluster name. */
  name: string;
  /** Node ids that get a credential each (`node-<id>.nk`). */
  nodes?: string[];
  /**
   * Id of the coordinator (`stitch coordinator --id`), whose node is `coordinator-<id>`; comma-separated
   * ids for standby coordinators, one credential each. @default main
   */
  coordinatorId?: string;
}

export interface AuthDirResult {
  config: string;
  /** Principal name (`admin`, `node-gpu1`) → seed file. */
  seeds: Record<string, string>;
  /** The kernel publisher's ed25519 key pair (PEM files): the admin keeps the private one. */
  kernelKeys: { privateKey: string; publicKey: string };
}

/**
 * Writes `<dir>/auth.conf` and a seed file per principal (admin, coordinator, client, node-<id>, and
 * `system`, the system account's user for server advisories).
 * Idempotent: an existing seed file is kept (its key stays valid), only missing ones are made, and
 * auth.conf is rewritten from all of them.
 */
export function writeAuthDir(dir: string, options: AuthDirOptions): AuthDirResult {
  const nodes = options.nodes ?? [];
  if (new Set(nodes).size !== nodes.length) throw new InvalidOptions('--nodes lists a node id twice');
  const principals: { name: string; role: Role; id?: string }[] = [
    { name: 'admin', role: 'admin' },
    // The first coordinator is `coordinator.nk`; standbys (high availability) get `coordinator-<id>.nk`.
    ...(options.coordinatorId ?? 'main').split(',').map((id, i) => ({
      name: i === 0 ? 'coordinator' : `coordinator-${id}`,
      role: 'coordinator' as const,
      id,
    })),
    { name: 'client', role: 'client' },
    ...nodes.map((id) => ({ name: `node-${id}`, role: 'node' as const, id })),
  ];
  // Permissions first: a bad cluster name or node id fails before anything is written.
  const permissions = principals.map((p) => rolePermissions(options.name, p.role, p.id));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const users: AuthUser[] = [];
  const seeds: Record<string, string> = {};
  principals.forEach((p, i) => {
    const file = join(dir, `${p.name}.nk`);
    const publicKey = existsSync(file) ? readSeed(file) : newSeed(file);
    seeds[p.name] = file;
    const perms = permissions[i];
    users.push({ name: `${p.name} (${p.role})`, publicKey, ...(perms ? { permissions: perms } : {}) });
  });
  // The system account's user: the coordinator subscribes with it to the server's disconnect advisories.
  const systemFile = join(dir, 'system.nk');
  const system = {
    name: 'system (server advisories)',
    publicKey: existsSync(systemFile) ? readSeed(systemFile) : newSeed(systemFile),
  };
  seeds.system = systemFile;
  const config = accountsBlock(
    users,
    [system],
    `stitch cluster "${options.name}": static nkey users, written by stitch cluster init --auth.\n` +
      'Include it from nats-server.conf (include ./auth.conf) and restart or reload the server.',
  );
  writeFileSync(join(dir, 'auth.conf'), config, { mode: 0o644 });
  return { config, seeds, kernelKeys: writeKernelKeys(dir) };
}

/** `kernel-publisher.pem` (0600) and `.pub.pem`, made once: nodes trust the public one (`--kernel-key`). */
function writeKernelKeys(dir: string): { privateKey: string; publicKey: string } {
  const privateKey = join(dir, 'kernel-publisher.pem');
  const publicKey = join(dir, 'kernel-publisher.pub.pem');
  if (!existsSync(privateKey)) {
    const pair = generatePublisherKey();
    writeFileSync(privateKey, pair.privateKey, { mode: 0o600, flag: 'wx' });
    chmodSync(privateKey, 0o600);
    writeFileSync(publicKey, pair.publicKey, { mode: 0o644 });
  }
  return { privateKey, publicKey };
}

function newSeed(file: string): string {
  const kp = createUser();
  writeFileSync(file, `${new TextDecoder().decode(kp.getSeed())}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return kp.getPublicKey();
}

function readSeed(file: string): string {
  const seed = readInputText(file, MAX_KEY_FILE_BYTES, 'nkey seed')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.startsWith('SU'));
  if (!seed) throw new InvalidOptions(`${file} exists but holds no user nkey seed (a line starting SU)`);
  try {
    return fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  } catch (err) {
    throw new InvalidOptions(`${file}: not a valid nkey seed (${(err as Error).message})`);
  }
}
