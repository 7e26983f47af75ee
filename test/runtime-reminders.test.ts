// Reminders against node processes and a real nats-server: a reminder comes back to its actor
// whether or not the actor is active then (the message activates it), once per tick, from whichever
// node owns it; a node killed with SIGKILL hands its share to the others; a cancelled reminder stops;
// garbage in the reminders bucket is skipped without silencing the ones next to it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type Cluster,
  connectCluster,
  type EmbeddedNats,
  InvalidOptions,
  startEmbeddedNats,
} from '@stitch/runtime';
import { Alarm, Ledger } from './fixtures/runtime-actors.js';
import { type NodeProc, startNode, stopAll } from './fixtures/runtime-procs.js';
import { waitFor } from './fixtures/wait.js';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const CLUSTER = 'remind';
const DEAD_AFTER_MS = 2000;
let nats: EmbeddedNats;
let client: Cluster;
let nodes: NodeProc[];

before(async () => {
  nats = await startEmbeddedNats();
  client = await connectCluster({ nats: nats.url, name: CLUSTER, deadAfterMs: DEAD_AFTER_MS });
  const env = { nats: nats.url, cluster: CLUSTER, deadAfterMs: DEAD_AFTER_MS, heartbeatMs: 250 };
  nodes = await Promise.all(
    ['remind-1', 'remind-2', 'remind-3'].map((nodeId) => startNode({ ...env, nodeId })),
  );
});

after(async () => {
  await client?.close();
  await stopAll();
  await nats?.stop();
});

/** The due times, in order, of the reminder ticks an actor recorded under `name`. */
function dueTimes(keys: readonly string[], name: string): number[] {
  return keys.map((k) => {
    const m = /^reminder:([^:]+):(\d+)$/.exec(k);
    assert.ok(m && m[1] === name, `key ${k} is a tick of reminder ${name}`);
    return Number(m[2]);
  });
}

test("an actor's own reminder comes back once, after its activation stopped; garbage beside it is skipped", async () => {
  // What any client with write access could leave in the bucket: not a record, a record under
  // another key, a record with a bad period.
  const bucket = await client.kv(`stitch_${CLUSTER}_reminders`);
  await bucket.put('alarm.a1.junk', new Uint8Array([0xc1, 0xff, 0x00]));
  await bucket.put('alarm.a1.other', new TextEncoder().encode('{"v":1}'));
  const alarm = client.get(Alarm, 'a1');
  assert.equal(await alarm.ask({ type: 'set', name: 'once', dueMs: 2000 }), true);
  const [listed] = await client.reminders(alarm);
  assert.equal(listed?.name, 'once');
  assert.equal(listed?.periodMs, 0);
  await client.stop(alarm);
  // The directory is read through a watch: it learns of the stop a moment later.
  await waitFor(async () => ((await client.locate(alarm)) === undefined ? true : undefined), 1500);
  assert.ok(Date.now() < listed!.dueAt, 'stopped before it was due');
  // Fired, then deleted by the node that fired it.
  await waitFor(async () => ((await client.reminders(alarm)).length === 0 ? true : undefined), 15_000);
  const rang = (await alarm.ask({ type: 'rang' })) as string[];
  assert.deepEqual(dueTimes(rang, 'once'), [listed!.dueAt]);
  await delay(800);
  assert.equal(((await alarm.ask({ type: 'rang' })) as string[]).length, 1, 'and only once');
  await bucket.delete('alarm.a1.junk');
  await bucket.delete('alarm.a1.other');
});

test('periodic reminders tick once per due time while a node is killed, and stop when cancelled', async () => {
  const PERIOD = 250;
  // Durable: a tick sent twice (its owner died between the ask and advancing the record) would show
  // as a key applied twice in a ledger.
  const ledgers = Array.from({ length: 9 }, (_, i) => client.get(Ledger, `tick-${i}`));
  await Promise.all(
    ledgers.map((l) =>
      client.setReminder(l, 'tick', { periodMs: PERIOD, mode: 'durable', message: { type: 'apply', n: 0 } }),
    ),
  );
  // A read that reached the victim as it died is never answered (fast mode: at most once); the
  // node's exit can come before the server drops its subscriptions, so the read right after the kill
  // may be one. Reads change nothing: asked again after a timeout (the library's retries).
  const applied = async () =>
    Promise.all(
      ledgers.map(async (l) => (await l.ask({ type: 'get' }, { retries: 2 })) as Record<string, number>),
    );
  const ticks = async () => (await applied()).map((a) => Object.keys(a).length);
  await waitFor(async () => ((await ticks()).every((n) => n >= 2) ? true : undefined), 15_000);
  const victim = nodes[0]!;
  victim.child.kill('SIGKILL');
  await victim.exited;
  const atKill = await ticks();
  // Every reminder goes on ticking, those the killed node owned (and the actors it hosted) included.
  await waitFor(
    async () => ((await ticks()).every((n, i) => n >= atKill[i]! + 4) ? true : undefined),
    30_000,
  );
  // Each reminder is sent by exactly one of the nodes left, and they say what they did.
  const counts = (await Promise.all(nodes.slice(1).map((n) => client.inspectNode(n.nodeId)))).map(
    (i) => i?.reminders,
  );
  assert.equal(
    counts.reduce((s, c) => s + (c?.owned ?? 0), 0),
    ledgers.length,
  );
  for (const c of counts) assert.equal(c?.tracked, ledgers.length);
  assert.ok(counts.reduce((s, c) => s + (c?.fired ?? 0), 0) > 0);
  await Promise.all(ledgers.map((l) => client.cancelReminder(l, 'tick')));
  assert.deepEqual(await client.reminders(ledgers[0]!), []);
  // A firing already under way when the cancel landed may still apply.
  await delay(1000);
  const atCancel = await ticks();
  await delay(PERIOD * 4);
  assert.deepEqual(await ticks(), atCancel, 'nothing ticks after the cancel');
  for (const a of await applied()) {
    const due = dueTimes(Object.keys(a), 'tick').sort((x, y) => x - y);
    for (const [key, n] of Object.entries(a)) assert.equal(n, 1, `${key} applied once`);
    // Ticks missed while their owner was dead are made up by one, on the period's grid.
    for (let i = 1; i < due.length; i++) assert.equal((due[i]! - due[0]!) % PERIOD, 0);
  }
});

test('bad reminder options are refused with what to change', async () => {
  const ref = client.get(Alarm, 'a2');
  const message = { type: 'ring' };
  for (const options of [
    { message, periodMs: 10 },
    { message, dueMs: -1 },
    { message, dueMs: 1.5 },
    { message: { no: 'type' } as never },
    { message, mode: 'eventually' as never },
    { message: { type: 'ring', blob: new Uint8Array(70_000) } },
  ])
    await assert.rejects(client.setReminder(ref, 'r', options), InvalidOptions);
  await assert.rejects(client.setReminder(ref, 'bad name', { message }), InvalidOptions);
  assert.deepEqual(await client.reminders(ref), []);
});

test("stitch reminders lists an actor's reminders, as a table or JSON, and cancels one", async () => {
  const ref = { type: 'alarm', id: 'cli' };
  const message = { type: 'ring' };
  await client.setReminder(ref, 'hourly', { periodMs: 3_600_000, message });
  await client.setReminder(ref, 'later', { dueMs: 86_400_000, message, mode: 'durable' });
  const stitch = async (...args: string[]) =>
    (
      await promisify(execFile)(process.execPath, [
        BIN,
        'reminders',
        'alarm',
        'cli',
        '--nats',
        nats.url,
        '--name',
        CLUSTER,
        ...args,
      ])
    ).stdout;
  const table = (await stitch()).trim().split('\n');
  assert.match(table[0]!, /^name\s+next due\s+in\s+period\s+mode$/);
  // Due in an hour and a day, less the moments since they were set.
  assert.match(table[1]!, /^hourly\s+\S+Z\s+3[56]\d\d(\.\d)? s\s+3600 s\s+fast$/);
  assert.match(table[2]!, /^later\s+\S+Z\s+8[56]\d{3}(\.\d)? s\s+once\s+durable$/);
  const listed = JSON.parse(await stitch('--cancel', 'hourly', '--json')) as { name: string }[];
  assert.deepEqual(
    listed.map((r) => r.name),
    ['later'],
  );
  await client.cancelReminder(ref, 'later');
  assert.equal((await stitch()).trim(), 'alarm/cli has no reminders');
});
