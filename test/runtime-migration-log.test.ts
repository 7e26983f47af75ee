// A node logs and counts each live migration of its actors: a move out with its phases (info), a
// move that failed and left the actor where it was (warn), and the moves in; in-process nodes on a
// real nats-server, each with a log of its own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type Cluster,
  connectCluster,
  type EmbeddedNats,
  type LogLevel,
  MigrationFailed,
  startEmbeddedNats,
} from '@stitch/runtime';
import { Counter } from './fixtures/runtime-actors.js';

type Line = { level: LogLevel; message: string; fields: Record<string, unknown> | undefined };

let nats: EmbeddedNats;
const clusters: Cluster[] = [];
const logs = new Map<string, Line[]>();

/** A process's cluster client with node `nodeId` in it, its log kept under that id. */
async function nodeWithLog(nodeId: string): Promise<Cluster> {
  const lines: Line[] = [];
  logs.set(nodeId, lines);
  const c = await connectCluster({
    nats: nats.url,
    name: 'miglog',
    log: (level, message, fields) => lines.push({ level, message, fields }),
  });
  clusters.push(c);
  await c.startNode({ id: nodeId, actors: [Counter] });
  return c;
}

before(async () => {
  nats = await startEmbeddedNats();
});

after(async () => {
  for (const c of clusters.reverse()) await c.close();
  await nats?.stop();
});

test('a move out is logged with its phases, a failed one with its error, and each node counts them', async () => {
  const a = await nodeWithLog('log-a');
  await nodeWithLog('log-b');
  const ref = await a.spawn(Counter, { id: 'moved', node: 'log-a' });
  await ref.ask({ type: 'add', by: 2 });

  const report = await a.migrate(ref, 'log-b');
  const moved = logs.get('log-a')!.find((l) => l.message === 'actor migrated');
  assert.ok(moved, `log-a: ${JSON.stringify(logs.get('log-a'))}`);
  assert.equal(moved.level, 'info');
  assert.equal(moved.fields?.actor, report.actor);
  assert.equal(moved.fields?.to, 'log-b');
  for (const phase of [
    'precopyMs',
    'pausedMs',
    'settleMs',
    'commitMs',
    'targetCommitMs',
    'directoryMs',
    'handoffMs',
  ])
    assert.equal(typeof moved.fields?.[phase], 'number', `${phase} logged`);
  assert.equal(await ref.ask({ type: 'get' }), 2);

  // Back to log-a through a node that does not exist: the begin finds no one, the actor stays.
  await assert.rejects(a.migrate(ref, 'log-nowhere'), MigrationFailed);
  const failed = logs.get('log-b')!.find((l) => l.message.startsWith('migration failed'));
  assert.ok(failed, `log-b: ${JSON.stringify(logs.get('log-b'))}`);
  assert.equal(failed.level, 'warn');
  assert.equal(failed.fields?.to, 'log-nowhere');
  assert.match(String(failed.fields?.error), /migrating .* failed at begin/);
  assert.equal((await a.locate(ref))?.node, 'log-b');

  const [ma, mb] = await Promise.all(
    ['log-a', 'log-b'].map(async (id) => (await a.inspectNode(id))?.migrations),
  );
  assert.deepEqual([ma?.out, ma?.in, ma?.failed], [1, 0, 0]);
  assert.deepEqual([mb?.out, mb?.in, mb?.failed], [0, 1, 1]);
  assert.equal(ma?.pausedMs.max, Math.round(report.pausedMs * 1000) / 1000);
});
