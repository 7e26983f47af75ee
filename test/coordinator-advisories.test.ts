// The coordinator learns of a node's death from the server's disconnect advisory (system account,
// `stitch coordinator --system-nkey`), not from its heartbeat: with a ten-minute dead-after window, a
// node killed with SIGKILL has its operators moved to the other node within the test's timeout.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { answersBucket, Coordinator, closeMemoryConnections, memoryBucketName } from '@stitch/agents';
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
import { waitUntil } from './fixtures/wait.js';

const C = 'adv';
const TEN_MINUTES = 600_000;
const sample = readFileSync(
  new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url),
  'utf8',
);

let dir: string;
let seeds: Record<string, string>;
let nats: EmbeddedNats;
const nodes = new Map<string, StitchNode>();
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
  // What stitch cluster init makes besides initCluster's: the buckets memory.store writes.
  await admin.kv(memoryBucketName(C), { create: true, history: 1 });
  await admin.kv(answersBucket(C).name, { create: true, history: 1, ...answersBucket(C) });
  await admin.close();
  // Two cpu node processes (one class: either can host every operator); the test kills whichever
  // the plan used.
  for (const id of ['x', 'y']) {
    const n = stitchNode([
      ...['--nats', nats.url, '--name', C, '--nkey', seeds[`node-${id}`]!, '--id', id],
      ...['--dead-after', String(TEN_MINUTES)],
      ...['--actors', 'packages/agents/dist/actors.js'],
    ]);
    await n.line;
    nodes.set(id, n);
  }
  coordinatorCluster = await connectCluster(as('coordinator'));
  coordinator = new Coordinator(coordinatorCluster, { driftEvery: 1_000_000 });
  await coordinator.start();
});

after(async () => {
  killStitchNodes();
  await advisories?.close();
  await coordinator?.stop();
  await closeMemoryConnections();
  await coordinatorCluster?.close();
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
  const victim = d.ops[0]!.node;
  const survivor = victim === 'x' ? 'y' : 'x';
  const onVictim = d.ops.filter((o) => o.node === victim).map((o) => o.id);
  nodes.get(victim)!.child.kill('SIGKILL');
  await nodes.get(victim)!.exited;
  const reason = `node ${victim} disconnected`;
  await waitUntil(() => coordinator!.migrations.some((m) => m.reason.includes(reason)));
  const now = coordinator!.deployment(d.name)!;
  assert.ok(
    now.ops.every((o) => o.node === survivor),
    JSON.stringify(now.ops),
  );
  const ev = coordinator!.migrations.find((m) => m.reason.includes(reason))!;
  assert.deepEqual(ev.moved.map((m) => m.opId).sort(), onVictim.sort());
  // The heartbeat window has not passed: the nodes bucket still calls the killed node alive.
  assert.equal(await coordinatorCluster!.isNodeAlive(victim), true);
});
