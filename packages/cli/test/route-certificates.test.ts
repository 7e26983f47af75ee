// `stitch cluster init --auth DIR --route-hosts …`: the route CA and one route certificate for every
// server, made with openssl, as deploy/nats/cluster.conf expects them; the CA is kept across reruns.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'stitch-route-certs-'));
after(() => rmSync(work, { recursive: true, force: true }));

const init = (dir: string, hosts: string) =>
  spawnSync(process.execPath, [BIN, 'cluster', 'init', '--auth', dir, '--route-hosts', hosts], {
    encoding: 'utf8',
    timeout: 60_000,
  });
const openssl = (...args: string[]) => spawnSync('openssl', args, { encoding: 'utf8' });

test('route certificates: signed by the route CA, valid as server and client for every host, keys 0600', () => {
  const dir = join(work, 'auth');
  const r = init(dir, '10.0.0.1,10.0.0.2,nats-2.example.internal');
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['route-key.pem', 'route-ca-key.pem'])
    assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is private`);
  assert.equal(openssl('verify', '-CAfile', join(dir, 'route-ca.pem'), join(dir, 'route.pem')).status, 0);
  const text = openssl('x509', '-in', join(dir, 'route.pem'), '-noout', '-text').stdout;
  assert.match(text, /IP Address:10\.0\.0\.1, IP Address:10\.0\.0\.2, DNS:nats-2\.example\.internal/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  // The key is the certificate's.
  const pub = (args: string[]) => openssl(...args).stdout;
  assert.equal(
    pub(['pkey', '-in', join(dir, 'route-key.pem'), '-pubout']),
    pub(['x509', '-in', join(dir, 'route.pem'), '-noout', '-pubkey']),
  );

  // Again with another server: the same CA, a new certificate naming it too.
  const ca = readFileSync(join(dir, 'route-ca.pem'), 'utf8');
  const before = readFileSync(join(dir, 'route.pem'), 'utf8');
  assert.equal(init(dir, '10.0.0.1,10.0.0.2,10.0.0.4').status, 0);
  assert.equal(readFileSync(join(dir, 'route-ca.pem'), 'utf8'), ca);
  assert.notEqual(readFileSync(join(dir, 'route.pem'), 'utf8'), before);
  assert.equal(openssl('verify', '-CAfile', join(dir, 'route-ca.pem'), join(dir, 'route.pem')).status, 0);
  assert.match(
    openssl('x509', '-in', join(dir, 'route.pem'), '-noout', '-text').stdout,
    /IP Address:10\.0\.0\.4/,
  );
});

test('a route host that is no address or DNS name is refused before anything is written', () => {
  const dir = join(work, 'bad');
  const r = init(dir, '10.0.0.1,not a host');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /"not a host" is neither an IP address nor a DNS name/);
  assert.equal(existsSync(dir), false);
  const alone = spawnSync(process.execPath, [BIN, 'cluster', 'init', '--route-hosts', '10.0.0.1'], {
    encoding: 'utf8',
  });
  assert.match(alone.stderr, /--route-hosts goes with --auth/);
});
