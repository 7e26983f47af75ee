// TLS to NATS: a test CA and certificates made with openssl, a nats-server that requires TLS (and one
// that also verifies client certificates), connectCluster with `tls`, and `stitch node --tls-*`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ConnectionFailed,
  type ConnectOptions,
  connectCluster,
  defineActor,
  type EmbeddedNats,
  startEmbeddedNats,
} from '@stitch/runtime';
import { TestCa } from './fixtures/pki.js';
import { killStitchNodes, stitchNode } from './fixtures/stitch-node.js';

const CLI = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));

const Echo = defineActor({
  type: 'echo',
  handlers: { echo: (_s: unknown, m: { text: string }) => m.text },
});

interface Pki {
  authority: TestCa;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all signed by the CA. */
function makePki(): Pki {
  const ca = TestCa.make();
  const server = ca.issue('localhost', 'server', ['localhost', '127.0.0.1']);
  const client = ca.issue('stitch-test-client', 'client');
  return {
    authority: ca,
    ca: ca.caFile,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
  };
}

/** nats-server with TLS required; `verify` also requires a client certificate signed by the CA. */
function tlsServer(pki: Pki, verify: boolean): Promise<EmbeddedNats> {
  return startEmbeddedNats({
    // timeout: the 0.5 s default handshake deadline is tight on a loaded machine.
    config: `tls {
      cert_file: "${pki.serverCert}"
      key_file: "${pki.serverKey}"
      ca_file: "${pki.ca}"
      verify: ${verify}
      timeout: 5
    }`,
  });
}

async function echoRoundTrip(options: ConnectOptions): Promise<void> {
  const cluster = await connectCluster(options);
  try {
    await cluster.startNode({ actors: [Echo] });
    assert.equal(await cluster.get(Echo, 'e1').ask({ type: 'echo', text: 'over tls' }), 'over tls');
  } finally {
    await cluster.close();
  }
}

const connectionFailed = (e: unknown) => e instanceof ConnectionFailed && e.code === 'NATS_CONNECT';

describe('TLS to NATS', () => {
  let pki: Pki;
  let tls: EmbeddedNats;
  let mtls: EmbeddedNats;

  before(async () => {
    pki = makePki();
    tls = await tlsServer(pki, false);
    mtls = await tlsServer(pki, true);
  });

  after(async () => {
    killStitchNodes();
    await tls?.stop();
    await mtls?.stop();
    pki?.authority.remove();
  });

  test('with the CA, connectCluster connects, hosts an actor and answers an ask', async () => {
    await echoRoundTrip({ nats: tls.url, name: 'tls', tls: { caFile: pki.ca } });
  });

  test('without the CA the server certificate is not trusted: ConnectionFailed', async () => {
    await assert.rejects(connectCluster({ nats: tls.url, name: 'tls' }), connectionFailed);
  });

  test('a server that verifies clients takes a client certificate signed by its CA', async () => {
    await echoRoundTrip({
      nats: mtls.url,
      name: 'mtls',
      tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey },
    });
  });

  test('a server that verifies clients refuses one without a certificate: ConnectionFailed', async () => {
    await assert.rejects(
      connectCluster({ nats: mtls.url, name: 'mtls', tls: { caFile: pki.ca } }),
      connectionFailed,
    );
  });

  test('stitch node --tls-ca joins and shows up in cluster.nodes(), then drains on SIGTERM', async () => {
    const client = await connectCluster({ nats: tls.url, name: 'tls-cli', tls: { caFile: pki.ca } });
    try {
      const n = stitchNode([
        '--nats',
        tls.url,
        '--tls-ca',
        pki.ca,
        '--name',
        'tls-cli',
        '--id',
        'tls-node-1',
      ]);
      assert.match(await n.line, /node tls-node-1 joined cluster "tls-cli"/);
      assert.ok((await client.nodes()).some((r) => r.nodeId === 'tls-node-1'));
      n.child.kill('SIGTERM');
      assert.equal(await n.exited, 0);
    } finally {
      await client.close();
    }
  });

  test('stitch node --tls-cert/--tls-key joins a server that verifies clients', async () => {
    const client = await connectCluster({
      nats: mtls.url,
      name: 'mtls-cli',
      tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey },
    });
    try {
      const n = stitchNode([
        '--nats',
        mtls.url,
        '--tls-ca',
        pki.ca,
        '--tls-cert',
        pki.clientCert,
        '--tls-key',
        pki.clientKey,
        '--name',
        'mtls-cli',
        '--id',
        'mtls-node-1',
      ]);
      assert.match(await n.line, /node mtls-node-1 joined cluster "mtls-cli"/);
      assert.ok((await client.nodes()).some((r) => r.nodeId === 'mtls-node-1'));
      n.child.kill('SIGTERM');
      assert.equal(await n.exited, 0);
    } finally {
      await client.close();
    }
  });

  test('stitch node without --tls-ca fails with NATS_CONNECT', () => {
    const run = spawnSync(
      process.execPath,
      [CLI, 'node', '--no-calibrate', '--nats', tls.url, '--name', 'x'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /\[NATS_CONNECT\]/);
  });
});

describe('connection flags', () => {
  /** Runs `stitch <args>` against a closed port: only flag validation can fail before connecting. */
  function stitch(args: string[]): { status: number | null; stderr: string } {
    const run = spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NATS_PASSWORD: '', NATS_TOKEN: '' },
    });
    return { status: run.status, stderr: run.stderr };
  }

  for (const command of [['node', '--no-calibrate'], ['coordinator'], ['cluster', 'init']]) {
    test(`${command.join(' ')}: --password without --user, and --tls-cert without --tls-key, are errors`, () => {
      const nats = ['--nats', 'nats://127.0.0.1:1'];
      const noUser = stitch([...command, ...nats, '--password', 'pw']);
      assert.equal(noUser.status, 1);
      assert.match(noUser.stderr, /--password needs --user.*\[RUNTIME_OPTIONS\]/);
      const noKey = stitch([...command, ...nats, '--tls-cert', CLI]);
      assert.equal(noKey.status, 1);
      assert.match(noKey.stderr, /--tls-cert and --tls-key go together.*\[RUNTIME_OPTIONS\]/);
    });
  }

  test('cluster init still takes --credentials, the old name of --creds', () => {
    const run = stitch([
      'cluster',
      'init',
      '--nats',
      'nats://127.0.0.1:1',
      '--credentials',
      '/nonexistent.creds',
    ]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /could not read the credentials file \/nonexistent\.creds/);
  });
});
