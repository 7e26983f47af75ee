// The leader lease against a real KV bucket, with one fault injected: a renewal that the server never
// answers. The leader must stop acting half a lease after the last renewal it sent, before a standby
// can take over (70 % of a lease), not when the hung request finally times out.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { KV } from '@nats-io/kv';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { LeaderLease } from '../src/leadership.js';

const LEASE_MS = 400;

let nats: EmbeddedNats;
let cluster: Cluster;

before(async () => {
  nats = await startEmbeddedNats();
  cluster = await connectCluster({ nats: nats.url, name: 'lease', log: () => undefined });
});

after(async () => {
  await cluster?.close();
  await nats?.stop();
});

/**
 * The bucket, with `hang()` making every later update wait until `release()` (then fail), and `slow()`
 * making them wait until `answer()` (then go through, late).
 */
async function bucket(name: string) {
  const kv = await cluster.kv(name, { create: true });
  let hanging: Promise<unknown> | undefined;
  let late = false;
  let release: () => void = () => undefined;
  const faulty = new Proxy(kv, {
    get(target, prop, receiver) {
      if (prop === 'update' && hanging) {
        const wait = hanging;
        return (...args: Parameters<KV['update']>) => (late ? wait.then(() => target.update(...args)) : wait);
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const block = (settle: 'reject' | 'resolve') => {
    late = settle === 'resolve';
    hanging = new Promise((resolve, reject) => {
      release = () => {
        hanging = undefined;
        if (settle === 'resolve') resolve(undefined);
        else reject(new Error('request timed out'));
      };
    });
    hanging.catch(() => undefined);
  };
  return {
    kv: faulty as KV,
    hang: () => block('reject'),
    slow: () => block('resolve'),
    release: () => release(),
    answer: () => release(),
  };
}

const events = () => {
  const seen: string[] = [];
  return {
    seen,
    elected: (epoch: number) => void seen.push(`elected ${epoch}`),
    deposed: (why: string) => void seen.push(`deposed: ${why}`),
    log: () => undefined,
  };
};

test('a leader whose renewal hangs stops leading within half a lease of the last one sent, before a standby takes over', async () => {
  const a = await bucket('lease_hang');
  const b = await bucket('lease_hang');
  const ea = events();
  const eb = events();
  const leader = new LeaderLease(a.kv, 'a', LEASE_MS, ea);
  await leader.start();
  assert.ok(leader.leading);
  const standby = new LeaderLease(b.kv, 'b', LEASE_MS, eb);
  await standby.start();
  // Renewals answered: it keeps leading over several leases.
  await delay(LEASE_MS * 3);
  assert.ok(leader.leading && !standby.leading);
  a.hang();
  const hungAt = performance.now();
  // Sample both often: never two leaders at once, and the old one stops first.
  let stoppedAt: number | undefined;
  let tookOverAt: number | undefined;
  while (performance.now() - hungAt < LEASE_MS * 3) {
    if (leader.leading && standby.leading) assert.fail('two leaders at once');
    if (!leader.leading) stoppedAt ??= performance.now();
    if (standby.leading) tookOverAt ??= performance.now();
    await delay(5);
  }
  assert.ok(
    stoppedAt !== undefined && tookOverAt !== undefined,
    `stopped ${stoppedAt}, took over ${tookOverAt}`,
  );
  assert.ok(stoppedAt < tookOverAt);
  assert.deepEqual(eb.seen, ['elected 2']);
  // The hung request fails at last: the old leader learns it was deposed and stays a standby.
  a.release();
  await delay(LEASE_MS);
  assert.ok(!leader.leading && standby.leading);
  assert.equal(ea.seen.at(-1)?.startsWith('deposed'), true, ea.seen.join('; '));
  await Promise.all([leader.stop(), standby.stop()]);
});

test('a lease stopped while its first take is on its way hands the lease back and never leads', async () => {
  const a = await bucket('lease_stop');
  const ea = events();
  const lease = new LeaderLease(a.kv, 'a', LEASE_MS, ea);
  const started = lease.start();
  await lease.stop();
  await started;
  await delay(LEASE_MS);
  assert.equal(lease.leading, false);
  assert.deepEqual(ea.seen, []);
  // The lease is free: another takes it at once rather than after it goes stale.
  const eb = events();
  const other = new LeaderLease((await bucket('lease_stop')).kv, 'b', LEASE_MS, eb);
  const t0 = performance.now();
  await other.start();
  await delay(50);
  assert.ok(other.leading, `not leading ${Math.round(performance.now() - t0)} ms after its start`);
  await other.stop();
});

test('while a renewal is late the holder waits to act: it acts once the renewal is answered, never when deposed', async () => {
  const a = await bucket('lease_late');
  const lease = new LeaderLease(a.kv, 'a', LEASE_MS, events());
  await lease.start();
  assert.ok(lease.leading && lease.held);
  assert.equal(await lease.untilActing(), true);
  // Late, then answered: unsure for a while, still the holder, and acting again once answered.
  a.slow();
  await delay(LEASE_MS * 0.8);
  assert.ok(!lease.leading && lease.held);
  let acted: boolean | undefined;
  const acting = lease.untilActing();
  void acting.then((v) => {
    acted = v;
  });
  await delay(LEASE_MS / 4);
  assert.equal(acted, undefined, 'acted while its renewal was unanswered');
  // The late answer is too old to count; the next renewal, sent at once, makes it act.
  a.answer();
  assert.equal(await acting, true);
  // Late, then failed: it no longer holds the lease, and what waited to act does not.
  a.hang();
  await delay(LEASE_MS * 0.8);
  const waiting = lease.untilActing();
  a.release();
  assert.equal(await waiting, false);
  assert.ok(!lease.held && !lease.leading);
  await lease.stop();
});

test('a waiter to act is answered false when the lease stops', async () => {
  const a = await bucket('lease_stop_waiter');
  const lease = new LeaderLease(a.kv, 'a', LEASE_MS, events());
  await lease.start();
  a.hang();
  await delay(LEASE_MS * 0.8);
  const waiting = lease.untilActing();
  // Its hand-back hangs as well: the waiter is answered before it.
  const stopped = lease.stop();
  assert.equal(await waiting, false);
  a.release();
  await stopped;
});
