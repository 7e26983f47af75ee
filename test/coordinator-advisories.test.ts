// The coordinator learns of a node's death from the server's disconnect advisory (system account,
// `stitch coordinator --system-nkey`), not from its heartbeat: with a ten-minute dead-after window, a
// node killed with SIGKILL has its operators moved to the other node within the test's timeout.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  Coordinator,
  closeMemoryConnections,
  memoryBucketName,
  OPERATOR_ACTORS,
  useMemoryBucket,
} from '@stitch/agents';
import {
  type Cluster,
  connectCluster,
  type EmbeddedNats,
  initCluster,
  startEmbeddedNats,
  watchServerDisconnects,
} from '@stitch/runtime';
import { writeAuthDir } from '../packages/cli/src/auth-files.js';
import { killStitchNodes, type StitchNode, stitchNode } from './fixtures/stitch-node.js';

const C = 'adv';
const TEN_MINUTES = 600_000;
const sample = readFileSync(
  new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url),
  'utf8',
);

let dir: string;
let seeds: Record<string, string>;
let nats: EmbeddedNats;
let nodeY: Cluster | undefined;
let nodeX: StitchNode | undefined;
let coordinatorCluster: Cluster | undefined;
let coordinator: Coordinator | undefined;
let advisories: { close(): Promise<void> } | undefined;
const as = (principal: string) => ({
  nats: nats.url,
  name: C,
  nkeySeedFile: seeds[principal],
  deadAfterMs: TEN_MINUTES,
  log: () => undefined,
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stitch-advisories-'));
  seeds = writeAuthDir(dir, { name: C, nodes: ['x', 'y'] }).seeds;
  nats = await startEmbeddedNats({ config: readFileSync(join(dir, 'auth.conf'), 'utf8') });
  await initCluster(as('admin'));
  const admin = await connectCluster(as('admin'));
  await admin.kv(memoryBucketName(C), { create: true, history: 1 });
  await admin.close();
  nodeY = await connectCluster(as('node-y'));
  await nodeY.startNode({ id: 'y', actors: OPERATOR_ACTORS });
  // Memory ops on y use y's connection (credentials), as `stitch node` sets up for its own.
  const y = nodeY;
  useMemoryBucket(C, () =>
    y.kv(memoryBucketName(C)).catch(() => y.kv(memoryBucketName(C), { create: true })),
  );
  nodeX = stitchNode([
    ...['--nats', nats.url, '--name', C, '--nkey', seeds['node-x']!, '--id', 'x'],
    ...['--virtual', 'h100', '--dead-after', String(TEN_MINUTES)],
    ...['--actors', 'packages/agents/dist/actors.js'],
  ]);
  await nodeX.line;
  coordinatorCluster = await connectCluster(as('coordinator'));
  coordinator = new Coordinator(coordinatorCluster, { driftEvery: 1_000_000 });
  await coordinator.start();
});

after(async () => {
  killStitchNodes();
  await advisories?.close();
  await coordinator?.stop();
  useMemoryBucket(C, undefined);
  await closeMemoryConnections();
  await coordinatorCluster?.close();
  await nodeY?.close();
  await nats?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a principal outside the system account cannot watch advisories', async () => {
  await assert.rejects(
    watchServerDisconnects({ nats: nats.url, nkeySeedFile: seeds.coordinator }, () => undefined),
    /system-account user/,
  );
});

test('a node killed with SIGKILL: its operators move on the disconnect advisory, long before its heartbeat expires', async () => {
  advisories = await watchServerDisconnects({ nats: nats.url, nkeySeedFile: seeds.system }, (client) =>
    coordinator!.nodeDisconnected(client),
  );
  const d = await coordinator!.deploy(sample);
  const onX = d.ops.filter((o) => o.node === 'x').map((o) => o.id);
  assert.ok(onX.length > 0, `the plan puts the LLM ops on x (virtual h100): ${JSON.stringify(d.ops)}`);
  nodeX!.child.kill('SIGKILL');
  await nodeX!.exited;
  await waitFor(() => coordinator!.migrations.some((m) => m.reason.includes('node x disconnected')));
  const now = coordinator!.deployment(d.name)!;
  assert.ok(
    now.ops.every((o) => o.node === 'y'),
    JSON.stringify(now.ops),
  );
  const ev = coordinator!.migrations.find((m) => m.reason.includes('node x disconnected'))!;
  assert.deepEqual(ev.moved.map((m) => m.opId).sort(), onX.sort());
  // The heartbeat window has not passed: the nodes bucket still calls x alive.
  assert.equal(await coordinatorCluster!.isNodeAlive('x'), true);
});

async function waitFor(cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new assert.AssertionError({ message: `condition not met within ${ms} ms` });
    await new Promise((r) => setTimeout(r, 50));
  }
}
