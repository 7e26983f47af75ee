// deploy/examples/workspace, a user's own pnpm monorepo whose two services embed stitch actors, as its
// user would run it: copied out of this repository, @stitch/runtime taken from the tarball `pnpm pack`
// makes (what the registry would serve), `pnpm install`, credentials from `stitch cluster init --auth`,
// the API service on one namespace host (beside a nats-server running deploy/nats/single.conf through
// stitch-nats.service) and the worker service on another. An HTTP request travels API → the Cart actor
// on the worker → reply; the actor keeps its state between requests; a handler's error comes back as
// a 502. Where namespaces are unavailable (and not under CI=true) both services run on loopback
// instead; skipped only when npm cannot reach the registry.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { install, startUnit, waitForOutput } from './fixtures/deploy/installed.js';
import { DEPLOY } from './fixtures/deploy/units.js';
import { skipWithoutHosts } from './fixtures/hosts/available.js';
import { Hosts } from './fixtures/hosts/netns.js';
import { killAll, outcome, pack, ROOT, registryProblem, run, userEnv } from './fixtures/packing.js';
import { alive } from './fixtures/pids.js';

const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const CLUSTER = 'orders';

/** A service process: its output, how it ended, and a way to signal it. */
interface Service {
  exited: Promise<number | string>;
  output(): { stdout: string; stderr: string };
  kill(signal: NodeJS.Signals): void;
  pid: number;
}

/** Where the services run: two namespace hosts, or loopback. */
interface Machines {
  natsUrl: string;
  /** HOST for the API service to bind, and the address to reach it at. */
  apiBind: string;
  apiAddress: string;
  start(host: 'api' | 'worker', cwd: string, args: string[], env: NodeJS.ProcessEnv): Service;
  close(): Promise<void>;
}

async function onHosts(auth: string, work: string): Promise<Machines> {
  const hosts = new Hosts(['api', 'worker']);
  try {
    const api = install(
      join(work, 'api-host'),
      'api',
      { 'nats.conf': join(DEPLOY, 'nats/single.conf'), 'auth.conf': join(auth, 'auth.conf') },
      {},
    );
    await waitForOutput(startUnit(hosts, api, 'stitch-nats.service'), /Server is ready/, 'nats-server');
    const ip = hosts.host('api').ip;
    return {
      natsUrl: `nats://${ip}:4222`,
      apiBind: '0.0.0.0',
      apiAddress: ip,
      start: (host, cwd, args, env) => {
        const p = hosts.spawn(host, 'env', ['-C', cwd, process.execPath, ...args], { env });
        return { exited: p.exited, output: p.output, kill: (s) => p.child.kill(s), pid: p.child.pid! };
      },
      close: () => hosts.close(),
    };
  } catch (err) {
    await hosts.close();
    throw err;
  }
}

async function onLoopback(auth: string): Promise<Machines> {
  const nats: EmbeddedNats = await startEmbeddedNats({
    config: readFileSync(join(auth, 'auth.conf'), 'utf8'),
  });
  const started: Service[] = [];
  return {
    natsUrl: nats.url,
    apiBind: '127.0.0.1',
    apiAddress: '127.0.0.1',
    start: (_host, cwd, args, env) => {
      const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const out = { stdout: '', stderr: '' };
      child.stdout.on('data', (b: Buffer) => {
        out.stdout += b.toString();
      });
      child.stderr.on('data', (b: Buffer) => {
        out.stderr += b.toString();
      });
      const exited = new Promise<number | string>((done) =>
        child.once('close', (code, signal) => done(code ?? signal ?? 'unknown')),
      );
      const s = {
        exited,
        output: () => ({ ...out }),
        kill: (sig: NodeJS.Signals) => child.kill(sig),
        pid: child.pid!,
      };
      started.push(s);
      return s;
    },
    close: async () => {
      for (const s of started) s.kill('SIGKILL');
      await Promise.all(started.map((s) => s.exited));
      await nats.stop();
    },
  };
}

const work = mkdtempSync(join(tmpdir(), 'stitch-example-workspace-'));
after(() => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});

test('the example pnpm workspace: HTTP → API service → Cart actor on the worker service → reply', {
  timeout: 240_000,
}, async (t) => {
  const problem = await registryProblem();
  if (problem) {
    t.skip(problem);
    return;
  }
  const noHosts = skipWithoutHosts();
  if (noHosts) t.diagnostic(`${noHosts}: the services run on loopback`);

  // The user's checkout of their monorepo, with @stitch/runtime from its tarball.
  const ws = join(work, 'workspace');
  cpSync(join(DEPLOY, 'examples/workspace'), ws, { recursive: true });
  const tarball = await pack(join(ROOT, 'packages/runtime'), work);
  appendFileSync(join(ws, 'pnpm-workspace.yaml'), `overrides:\n  '@stitch/runtime': file:${tarball}\n`);
  const installed = await run('pnpm', ['install', '--prefer-offline'], {
    cwd: ws,
    env: userEnv(),
    timeoutMs: 120_000,
  });
  assert.equal(installed.code, 0, outcome('pnpm install', installed));

  const auth = join(work, 'auth');
  const init = spawnSync(
    process.execPath,
    [BIN, 'cluster', 'init', '--auth', auth, '--name', CLUSTER, '--nodes', 'worker-1'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(init.status, 0, init.stderr);

  const machines = noHosts ? await onLoopback(auth) : await onHosts(auth, work);
  const services: Service[] = [];
  try {
    const setUp = spawnSync(
      process.execPath,
      [
        BIN,
        'cluster',
        'init',
        '--nats',
        machines.natsUrl,
        '--name',
        CLUSTER,
        '--nkey',
        join(auth, 'admin.nk'),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(setUp.status, 0, setUp.stderr);
    const common = { ...userEnv(), STITCH_NATS: machines.natsUrl, STITCH_CLUSTER: CLUSTER };
    const worker = machines.start('worker', join(ws, 'services/worker'), ['src/main.js'], {
      ...common,
      STITCH_NKEY: join(auth, 'node-worker-1.nk'),
      WORKER_ID: 'worker-1',
    });
    services.push(worker);
    await waitForOutput(worker, /worker worker-1 hosts orders-cart/, 'worker service');
    const api = machines.start('api', join(ws, 'services/api'), ['src/main.js'], {
      ...common,
      STITCH_NKEY: join(auth, 'client.nk'),
      HOST: machines.apiBind,
      PORT: noHosts ? '0' : '8080',
    });
    services.push(api);
    const listening = await waitForOutput(api, /api listening on http:\/\/\S+:\d+/, 'api service');
    const base = `http://${machines.apiAddress}:${/:(\d+)$/.exec(listening)![1]}`;

    const quote = async (cart: string, items: Record<string, number>) => {
      const res = await fetch(`${base}/carts/${cart}/quote`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ items }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    assert.deepEqual(await quote('alice', { apple: 2, plum: 1 }), {
      status: 200,
      body: { cents: 80, quotes: 1, pricedBy: 'worker-1' },
    });
    assert.deepEqual(await quote('alice', { pear: 1 }), {
      status: 200,
      body: { cents: 45, quotes: 2, pricedBy: 'worker-1' },
    });
    const refused = await quote('bob', { kiwi: 1 });
    assert.equal(refused.status, 502);
    assert.match(String(refused.body.error), /unknown sku kiwi/);
    assert.equal(refused.body.code, 'HANDLER_ERROR');

    // Both stop cleanly on SIGTERM.
    for (const s of [api, worker]) {
      s.kill('SIGTERM');
      assert.equal(await s.exited, 0, `${s.output().stdout}${s.output().stderr}`);
    }
  } finally {
    await machines.close();
  }
  assert.deepEqual(services.map((s) => s.pid).filter(alive), [], 'no service process is left');
});
