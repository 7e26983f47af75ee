import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { findNatsServer } from '../src/cluster/embedded-nats.js';
import { probePeer, QuorumWatch, startPartitionGuard } from '../src/cluster/partition-guard.js';
import { InvalidOptions } from '../src/errors.js';

test('a server is stopped once a majority has been out of reach for isolatedAfterMs, started once back for rejoinAfterMs', () => {
  // Three servers: this one and two peers, of which one must answer.
  const w = new QuorumWatch(2, 1500, 1000, 0);
  assert.equal(w.observe(1, 500), undefined);
  assert.equal(w.observe(0, 1000), undefined);
  assert.equal(w.observe(0, 2400), undefined);
  assert.equal(w.observe(0, 2500), 'isolated');
  assert.equal(w.observe(0, 3000), undefined, 'reported once');
  assert.equal(w.observe(2, 3500), undefined);
  assert.equal(w.observe(1, 4400), undefined);
  assert.equal(w.observe(1, 4500), 'rejoined');
  assert.equal(w.observe(1, 9000), undefined);
  // A peer that answers in between starts the count again.
  assert.equal(w.observe(0, 10_000), undefined);
  assert.equal(w.observe(1, 11_000), undefined);
  assert.equal(w.observe(0, 11_200), undefined);
  assert.equal(w.observe(0, 12_600), undefined);
  assert.equal(w.observe(0, 12_700), 'isolated');
});

test('with five servers a majority is this one and two peers', () => {
  const w = new QuorumWatch(4, 0, 0, 0);
  assert.equal(w.observe(2, 1), undefined);
  assert.equal(w.observe(1, 2), 'isolated');
  assert.equal(w.observe(2, 3), 'rejoined');
});

const listening = async (): Promise<Server> => {
  const s = createServer((c) => c.destroy());
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return s;
};
const portOf = (s: Server) => (s.address() as { port: number }).port;

test('a peer that accepts, or refuses, is in reach; a malformed peer is refused at once', async () => {
  const open = await listening();
  const closed = await listening();
  const closedPort = portOf(closed);
  await new Promise((r) => closed.close(r));
  try {
    assert.equal(await probePeer(`127.0.0.1:${portOf(open)}`, 1000), true);
    // The host answered (its server is down): stopping here too would leave every server waiting for another.
    assert.equal(await probePeer(`127.0.0.1:${closedPort}`, 1000), true);
    assert.equal(await probePeer(`[::1]:${closedPort}`, 1000), true);
    for (const bad of ['127.0.0.1', 'host:0', 'host:70000', ':4222', 'a:b:4222'])
      assert.throws(() => startPartitionGuard({ command: 'true', peers: [bad] }), InvalidOptions, bad);
    assert.throws(() => startPartitionGuard({ command: 'true', peers: [] }), InvalidOptions);
    // This host's own server is left out of the same list every host is given: nothing else here.
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal)
      .map((a) => (a!.family === 'IPv6' ? `[${a!.address}]:4222` : `${a!.address}:4222`));
    assert.throws(
      () => startPartitionGuard({ command: 'true', peers: [`${hostname()}:4222`, ...external] }),
      /this host's own left out/,
    );
  } finally {
    open.close();
  }
});

test('a probe whose timeout fires late (this process stalled) counts its peer in reach', async () => {
  const open = await listening();
  try {
    const probe = probePeer(`127.0.0.1:${portOf(open)}`, 50);
    // A stalled event loop: when it runs again, timers come before the connection that completed.
    const until = performance.now() + 300;
    while (performance.now() < until);
    assert.equal(await probe, true);
  } finally {
    open.close();
  }
});

test('the guard runs the server while peers are in reach, and ends with it', async () => {
  const peer = await listening();
  const dir = mkdtempSync(join(tmpdir(), 'stitch-guard-test-'));
  const logged: string[] = [];
  const guardServer = () =>
    startPartitionGuard({
      command: findNatsServer(),
      args: ['-a', '127.0.0.1', '-p', '-1', '-l', join(dir, 'server.log')],
      peers: [`127.0.0.1:${portOf(peer)}`],
      probeIntervalMs: 50,
      isolatedAfterMs: 100,
      log: (_level, msg) => logged.push(msg),
    });
  try {
    const guard = guardServer();
    const pid = guard.serverPid;
    assert.ok(pid !== undefined);
    await delay(500);
    assert.equal(guard.serverPid, pid, 'a peer in reach: the server keeps running');
    assert.deepEqual(logged, []);
    const code = await guard.close();
    assert.ok(code === 0 || code === 1 || code === 'SIGTERM', `exit ${code}`);
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the server is gone');

    // A server that exits on its own ends the guard (its supervisor restarts both).
    const second = guardServer();
    process.kill(second.serverPid!, 'SIGKILL');
    assert.equal(await second.ended, 'SIGKILL');
    assert.equal(second.serverPid, undefined);
    assert.match(logged.join('\n'), /exited/);
  } finally {
    peer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
