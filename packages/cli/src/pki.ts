// Certificates made with the openssl command line (Debian's `openssl`; deploy/setup.sh installs it):
// EC P-256 keys, each certificate with the names and key usages it is issued for. openssl runs with a
// config of its own, so no system openssl.cnf is needed.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** openssl is missing, or refused what it was asked to make. */
export class CertificateError extends Error {
  readonly code = 'CLI_CERTIFICATE';
  override readonly name = 'CertificateError';
}

const REQ_CONF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = stitch
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(cwd: string, args: string[]): void {
  const run = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (run.error)
    throw new CertificateError(
      `openssl ${args[0]}: ${run.error.message} (install the openssl command: apt-get install openssl)`,
    );
  if (run.status !== 0) throw new CertificateError(`openssl ${args.join(' ')} failed:\n${run.stderr}`);
}

/** Runs `fn` in a scratch directory holding openssl's config, removed afterwards. */
function inScratch<T>(fn: (scratch: string) => T): T {
  const scratch = mkdtempSync(join(tmpdir(), 'stitch-pki-'));
  try {
    writeFileSync(join(scratch, 'openssl.cnf'), REQ_CONF);
    return fn(scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const DNS_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** Whether `host` can be a certificate's alternative name: an IP address or a DNS name. */
export const isRouteHost = (host: string) => isIP(host) !== 0 || DNS_NAME.test(host);

/** A subject alternative name for a host: `IP:` for an address, `DNS:` for a name. */
function altName(host: string): string {
  if (!isRouteHost(host)) throw new CertificateError(`"${host}" is neither an IP address nor a DNS name`);
  return isIP(host) ? `IP:${host}` : `DNS:${host}`;
}

export type CertificateUsage = 'server' | 'client' | 'both';

export interface Issued {
  cert: string;
  key: string;
}

/** A certificate authority kept as `<name>.pem` and `<name>-key.pem` (mode 0600) in a directory. */
export class CertificateAuthority {
  readonly certFile: string;
  readonly keyFile: string;

  readonly dir: string;

  private constructor(dir: string, name: string) {
    // Absolute: openssl runs in a scratch directory.
    this.dir = resolve(dir);
    this.certFile = join(this.dir, `${name}.pem`);
    this.keyFile = join(this.dir, `${name}-key.pem`);
  }

  /** The authority in `dir` named `name`, made (valid `days`) when its files are not there yet. */
  static openOrCreate(dir: string, name: string, days: number): CertificateAuthority {
    const ca = new CertificateAuthority(dir, name);
    if (existsSync(ca.certFile) && existsSync(ca.keyFile)) return ca;
    mkdirSync(ca.dir, { recursive: true, mode: 0o700 });
    inScratch((scratch) =>
      openssl(scratch, [
        'req',
        '-config',
        'openssl.cnf',
        ...NEW_KEY,
        '-x509',
        '-extensions',
        'ca',
        '-subj',
        `/CN=${name}`,
        '-days',
        String(days),
        '-keyout',
        ca.keyFile,
        '-out',
        ca.certFile,
      ]),
    );
    chmodSync(ca.keyFile, 0o600);
    return ca;
  }

  /**
   * Issues `<name>.pem` and `<name>-key.pem` (0600) in the authority's directory for `usage` (a
   * server's, a client's, or both, as a route's is: it is dialled and it dials), valid `days`, with
   * `hosts` as subject alternative names. Files of that name are replaced.
   */
  issue(name: string, usage: CertificateUsage, hosts: readonly string[], days: number): Issued {
    const names = hosts.map(altName);
    const cert = join(this.dir, `${name}.pem`);
    const key = join(this.dir, `${name}-key.pem`);
    inScratch((scratch) => {
      const ext = [
        '[cert]',
        'basicConstraints = CA:FALSE',
        'keyUsage = critical,digitalSignature',
        `extendedKeyUsage = ${usage === 'both' ? 'serverAuth,clientAuth' : `${usage}Auth`}`,
        ...(names.length > 0 ? [`subjectAltName = ${names.join(',')}`] : []),
        '',
      ].join('\n');
      writeFileSync(join(scratch, 'cert.ext'), ext);
      rmSync(key, { force: true });
      openssl(scratch, [
        'req',
        '-config',
        'openssl.cnf',
        ...NEW_KEY,
        '-subj',
        `/CN=${name}`,
        '-keyout',
        key,
        '-out',
        'cert.csr',
      ]);
      chmodSync(key, 0o600);
      openssl(scratch, [
        'x509',
        '-req',
        '-in',
        'cert.csr',
        '-CA',
        this.certFile,
        '-CAkey',
        this.keyFile,
        // Random, so that certificates issued again by the same authority never share a serial.
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-days',
        String(days),
        '-extfile',
        'cert.ext',
        '-extensions',
        'cert',
        '-out',
        cert,
      ]);
    });
    return { cert, key };
  }
}
