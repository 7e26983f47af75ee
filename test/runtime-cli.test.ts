// `stitch node` as a real process: joins, advertises its labels and virtual devices, drains on SIGTERM.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { killStitchNodes, stitchNode } from './fixtures/stitch-node.js';

describe('stitch node', () => {
  let nats: EmbeddedNats;
  let client: Cluster;

  before(async () => {
    nats = await startEmbeddedNats();
    client = await connectCluster({ nats: nats.url, name: 'cli' });
  });

  after(async () => {
    killStitchNodes();
    await client?.close();
    await nats?.stop();
  });

  test('joins with labels and virtual devices, drains and exits 0 on SIGTERM', async () => {
    const n = stitchNode([
      '--actors',
      fileURLToPath(new URL('./fixtures/runtime-cli-actors.mjs', import.meta.url)),
      '--nats',
      nats.url,
      '--name',
      'cli',
      '--id',
      'cli-1',
      '--labels',
      'zone=a,tier=gpu',
      '--virtual',
      'h100,b200',
    ]);
    assert.match(await n.line, /node cli-1 joined cluster "cli"/);
    const rec = (await client.nodes()).find((r) => r.nodeId === 'cli-1');
    assert.deepEqual(rec?.labels, { zone: 'a', tier: 'gpu' });
    assert.deepEqual(
      rec?.devices.filter((d) => d.kind.startsWith('virtual:')).map((d) => d.kind),
      ['virtual:h100', 'virtual:b200'],
    );
    assert.deepEqual(rec?.actorTypes, ['greeter']);
    const greeter = await client.spawn('greeter', { id: 'g1' });
    assert.equal(await greeter.ask({ type: 'greet', name: 'stitch' } as never), 'hello stitch');
    n.child.kill('SIGTERM');
    assert.equal(await n.exited, 0);
    assert.ok(!(await client.isNodeAlive('cli-1')));
  });

  test('with no --nats it runs an embedded server and removes it on SIGINT', async () => {
    const n = stitchNode(['--name', 'solo']);
    const line = await n.line;
    const url = /at (nats:\/\/\S+);/.exec(line)?.[1];
    assert.ok(url, line);
    const solo = await connectCluster({ nats: url, name: 'solo' });
    assert.equal((await solo.nodes()).length, 1);
    await solo.close();
    n.child.kill('SIGINT');
    assert.equal(await n.exited, 0);
    await delay(100);
    const port = Number(new URL(url).port);
    await assert.rejects(
      connectCluster({ nats: `nats://127.0.0.1:${port}`, name: 'solo' }).then((c) => c.close()),
    );
  });

  test('--log-level info logs each live migration with its phases; a bad level is refused', async () => {
    const actors = fileURLToPath(new URL('./fixtures/runtime-cli-actors.mjs', import.meta.url));
    const common = ['--actors', actors, '--nats', nats.url, '--name', 'cli', '--log-level', 'info'];
    const [a, b] = [stitchNode([...common, '--id', 'cli-from']), stitchNode([...common, '--id', 'cli-to'])];
    await Promise.all([a.line, b.line]);
    const greeter = await client.spawn('greeter', { id: 'moved', node: 'cli-from' });
    const report = await client.migrate(greeter, 'cli-to');
    assert.equal(await greeter.ask({ type: 'greet', name: 'again' } as never), 'hello again');
    const line = a
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'actor migrated');
    assert.ok(line, `cli-from's stderr: ${a.stderr()}`);
    assert.equal(line.level, 'info');
    assert.equal(line.actor, report.actor);
    assert.equal(line.to, 'cli-to');
    assert.equal(typeof line.pausedMs, 'number');
    for (const n of [a, b]) n.child.kill('SIGKILL');
    await Promise.all([a.exited, b.exited]);

    const bad = stitchNode(['--nats', nats.url, '--log-level', 'loud']);
    await assert.rejects(bad.line, /exited \(1\).*--log-level.*debug, info, warn, error/s);
  });

  test('bad labels are refused with a clear message and exit code 1', async () => {
    const n = stitchNode(['--nats', nats.url, '--labels', 'oops']);
    await assert.rejects(n.line, /exited \(1\)/);
  });
});
