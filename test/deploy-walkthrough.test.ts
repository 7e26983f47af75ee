// The README's multi-host walkthrough (Deployment → Several hosts, step by step), followed on three
// network-namespace hosts: credentials and route certificates from `stitch cluster init --auth
// --route-hosts`; on every host deploy/nats/cluster.conf (routes under mutual TLS), the auth block, /etc/stitch/env from deploy/systemd/env.example with the
// hosts' addresses, the sysctl file and stitch-nats.service with its partition guard drop-in; `stitch cluster init` as admin; node h1 and
// the coordinator `main` on h1, node h2 and the `standby` coordinator on h2 (stitch-node@ and
// stitch-coordinator@, their ExecStart as systemd expands it); `stitch serve --deploy` on h3, and one
// chat completion answered over HTTP. Skips where namespaces are unavailable (fails under CI=true);
// every process and namespace is gone afterwards, also after a failure.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import { loadDeployment } from '@stitch/agents';
import { connectCluster } from '@stitch/runtime';
import { type InstalledHost, install, startUnit, waitForOutput } from './fixtures/deploy/installed.js';
import { DEPLOY, parseEnvFile } from './fixtures/deploy/units.js';
import { skipWithoutHosts } from './fixtures/hosts/available.js';
import { Hosts } from './fixtures/hosts/netns.js';
import { ROOT } from './fixtures/packing.js';
import { alive } from './fixtures/pids.js';
import { waitFor } from './fixtures/wait.js';

const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const GRAPH = join(ROOT, 'packages/ir/samples/tool-agent.tiny-llama.mlir');
const API_KEY = 'walkthrough-key-0123456789';

test('the multi-host walkthrough: a 3-server cluster with auth, nodes, a coordinator and a standby, serve answers', {
  skip: skipWithoutHosts(),
  timeout: 180_000,
}, async () => {
  const hosts = new Hosts(['h1', 'h2', 'h3']);
  const work = mkdtempSync(join(tmpdir(), 'stitch-walkthrough-'));
  try {
    const [h1, h2, h3] = hosts.hosts as [
      (typeof hosts.hosts)[0],
      (typeof hosts.hosts)[0],
      (typeof hosts.hosts)[0],
    ];
    const stitch = (host: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
      hosts.spawn(host, 'env', ['-C', ROOT, process.execPath, BIN, ...args], { env });

    // Once: a credential per principal.
    const auth = join(work, 'auth');
    const init = spawnSync(
      process.execPath,
      [
        BIN,
        'cluster',
        'init',
        '--auth',
        auth,
        '--name',
        'prod',
        '--nodes',
        'h1,h2',
        '--coordinator-id',
        'main,standby',
        '--route-hosts',
        hosts.hosts.map((h) => h.ip).join(','),
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(init.status, 0, init.stderr);

    // Every host: nats.conf, auth.conf, /etc/stitch/env (the example's addresses become the hosts'),
    // the sysctl file, stitch-nats.
    const example = parseEnvFile(readFileSync(join(DEPLOY, 'systemd/env.example'), 'utf8'));
    const urls = hosts.hosts.map((h) => `nats://${h.ip}:4222`).join(',');
    const env = {
      ...example,
      STITCH_NATS: urls,
      STITCH_NATS_ROUTES: `[${hosts.hosts.map((h) => `nats-route://${h.ip}:6222`).join(',')}]`,
      STITCH_NATS_PEERS: hosts.hosts.map((h) => `${h.ip}:4222`).join(','),
      STITCH_ACTORS: example.STITCH_ACTORS!.replace('/opt/stitch', ROOT),
      // Calibration times kernels in the background, competing with the other tests for two cores;
      // without it the planner uses catalog peaks.
      STITCH_NODE_FLAGS: '--no-calibrate',
    };
    assert.deepEqual(
      Object.keys(env).sort(),
      Object.keys(example).sort(),
      'the walkthrough sets what env.example has',
    );
    const sysctl = readFileSync(join(DEPLOY, 'sysctl/60-stitch-nats.conf'), 'utf8');
    const installed: Record<string, InstalledHost> = {};
    for (const h of hosts.hosts) {
      installed[h.name] = install(
        join(work, h.name),
        h.name,
        {
          'nats.conf': join(DEPLOY, 'nats/cluster.conf'),
          'auth.conf': join(auth, 'auth.conf'),
          ...Object.fromEntries(
            ['route.pem', 'route-key.pem', 'route-ca.pem'].map((f) => [f, join(auth, f)]),
          ),
        },
        env,
      );
      for (const [, key, value] of sysctl.matchAll(/^([\w.]+)\s*=\s*(\S+)$/gm))
        hosts.sysctl(h.name, key!, value!);
    }
    // Under the partition guard, as the README installs the server of a cluster.
    const servers = hosts.hosts.map((h) =>
      startUnit(hosts, installed[h.name]!, 'stitch-nats.service', [
        'stitch-nats.service.d/partition-guard.conf',
      ]),
    );
    await Promise.all(servers.map((s, i) => waitForOutput(s, /Server is ready/, `nats-server on h${i + 1}`)));

    // Once the servers run: the stream and buckets, as admin (retried while JetStream elects its leader).
    let setUp = '';
    for (let attempt = 0; !/is set up/.test(setUp); attempt++) {
      assert.ok(attempt < 20, `stitch cluster init never succeeded:\n${setUp}`);
      const p = stitch('h3', [
        'cluster',
        'init',
        '--nats',
        urls,
        '--name',
        'prod',
        '--nkey',
        join(auth, 'admin.nk'),
        '--replicas',
        '3',
      ]);
      await p.exited;
      setUp = p.output().stdout + p.output().stderr;
      if (!/is set up/.test(setUp)) await new Promise((r) => setTimeout(r, 500));
    }

    // The three servers are one JetStream cluster: the mailbox stream has a replica on each.
    const seed = new TextEncoder().encode(readFileSync(join(auth, 'admin.nk'), 'utf8').trim());
    const nc = await connect({ servers: urls.split(','), authenticator: nkeyAuthenticator(seed) });
    try {
      const jsm = await jetstreamManager(nc);
      // Asked again while the stream's group, just made, still elects its leader.
      const info = await waitFor(
        () => jsm.streams.info('stitch_prod_mailbox').catch(() => undefined),
        30_000,
      );
      assert.equal(info.config.num_replicas, 3);
    } finally {
      await nc.close();
    }

    // h1: node h1 and coordinator main; h2: node h2 and the standby.
    const credentials: Record<string, Record<string, string>> = {
      h1: { 'node-h1.nk': 'node-h1.nk', 'coordinator-main.nk': 'coordinator.nk', 'system.nk': 'system.nk' },
      h2: {
        'node-h2.nk': 'node-h2.nk',
        'coordinator-standby.nk': 'coordinator-standby.nk',
        'system.nk': 'system.nk',
      },
    };
    for (const [host, files] of Object.entries(credentials))
      install(
        installed[host]!.root,
        host,
        Object.fromEntries(
          Object.entries(files).map(([dest, src]) => [`credentials/${dest}`, join(auth, src)]),
        ),
        env,
      );
    const node1 = startUnit(hosts, installed.h1!, 'stitch-node@h1.service');
    const node2 = startUnit(hosts, installed.h2!, 'stitch-node@h2.service');
    await waitForOutput(node1, /node h1 joined cluster "prod"/, 'node h1');
    await waitForOutput(node2, /node h2 joined cluster "prod"/, 'node h2');
    const main = startUnit(hosts, installed.h1!, 'stitch-coordinator@main.service');
    await waitForOutput(main, /leading the cluster's coordinators/, 'coordinator main');
    const standby = startUnit(hosts, installed.h2!, 'stitch-coordinator@standby.service');
    await waitForOutput(standby, /coordinator stitch-coordinator\/standby running/, 'coordinator standby');
    assert.doesNotMatch(standby.output().stdout, /leading/, 'the standby does not lead while main does');

    // h3: deploy the graph through the coordinator and serve it beyond loopback, with an API key.
    const serve = stitch(
      'h3',
      [
        'serve',
        ...['--nats', `nats://${h3.ip}:4222`, '--name', 'prod'],
        ...['--nkey', join(auth, 'client.nk'), '--deploy', GRAPH, '--host', '0.0.0.0', '--port', '8080'],
      ],
      { ...process.env, STITCH_SERVE_API_KEY: API_KEY },
    );
    await waitForOutput(serve, /serving http:\S+\/v1/, 'stitch serve', 120_000);
    const res = await fetch(`http://${h3.ip}:8080/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tool_agent',
        messages: [{ role: 'user', content: 'What is 6*7?' }],
        metadata: { expr: '6*7' },
      }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const answer = (JSON.parse(text) as { stitch: { answer: { calc: { value: number } } } }).stitch.answer;
    assert.equal(answer.calc.value, 42);

    // The coordinator placed every operator on the two nodes (its own node hosts none).
    const admin = await connectCluster({
      nats: urls,
      name: 'prod',
      nkeySeedFile: join(auth, 'admin.nk'),
      log: () => undefined,
    });
    try {
      const d = await loadDeployment(admin, 'tool_agent');
      assert.ok(d, 'the deployment is recorded');
      const nodes = new Set(d.ops.map((o) => o.node));
      assert.deepEqual(
        [...nodes].filter((n) => n !== h1.name && n !== h2.name),
        [],
        `operators on ${[...nodes]}`,
      );
    } finally {
      await admin.close();
    }
  } finally {
    await hosts.close();
    rmSync(work, { recursive: true, force: true });
  }
  assert.deepEqual(hosts.remaining(), [], 'no namespace or link is left');
  assert.deepEqual(hosts.pids.filter(alive), [], 'no process is left');
});
