// ActorDefinition.deactivate: each state an activation lets go of is handed to it exactly once — on a
// stop, at a live migration's source, when a crash's restart replaces it, past the restart limit —
// and never a state still in use.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type Cluster,
  Crash,
  connectCluster,
  defineActor,
  type EmbeddedNats,
  startEmbeddedNats,
} from '@stitch/runtime';
import { waitUntil } from './fixtures/wait.js';

/** `<actor id>#<state serial>` of every state deactivated, in order. */
const deactivated: string[] = [];
let serial = 0;

interface Held {
  id: string;
  serial: number;
  n: number;
  poisoned: boolean;
}

const held = (id: string, n: number, poisoned = false): Held => ({ id, serial: ++serial, n, poisoned });

const Holder = defineActor({
  type: 'holder',
  init: (id: string) => held(id, 0),
  handlers: {
    add: (s: Held, m: { by: number }) => {
      s.n += m.by;
      return s.n;
    },
    serial: (s: Held) => s.serial,
    crash: () => {
      throw new Crash('asked to');
    },
    poison: (s: Held) => {
      s.poisoned = true;
    },
  },
  snapshot: (s: Held) => ({ n: s.n, poisoned: s.poisoned }),
  restore: (snap: unknown, id: string) => {
    const v = snap as { n: number; poisoned: boolean };
    if (v.poisoned) throw new Error('poisoned');
    return held(id, v.n);
  },
  // A move restores the state on the target before its commit (a staged state, let go of if it fails).
  delta: {
    mark: (s: Held) => s.n,
    since: (s: Held) => ({ n: s.n }),
    apply: (s: Held, change: unknown) => {
      s.n = (change as { n: number }).n;
      return s;
    },
  },
  restart: { maxRestarts: 1, withinMs: 60_000, backoffMs: 10 },
  deactivate: (s: Held) => {
    deactivated.push(`${s.id}#${s.serial}`);
    if (s.id === 'throws') throw new Error('deactivate failed');
  },
});

let nats: EmbeddedNats;
let a: Cluster;
let b: Cluster;
const logged: string[] = [];

before(async () => {
  nats = await startEmbeddedNats();
  const log = (level: string, msg: string) => logged.push(`${level} ${msg}`);
  a = await connectCluster({ nats: nats.url, name: 'deact', log });
  b = await connectCluster({ nats: nats.url, name: 'deact', log });
  await a.startNode({ id: 'a', actors: [Holder] });
  await b.startNode({ id: 'b', actors: [Holder] });
});

after(async () => {
  await b?.close();
  await a?.close();
  await nats?.stop();
});

const of = (id: string) => deactivated.filter((d) => d.startsWith(`${id}#`));

test('a stop hands the last state over once, after its snapshot is saved', async () => {
  const ref = await a.spawn(Holder, { id: 'stopped', node: 'a' });
  assert.equal(await ref.ask({ type: 'add', by: 2 }), 2);
  const first = (await ref.ask({ type: 'serial' })) as number;
  await a.stop(ref);
  assert.deepEqual(of('stopped'), [`stopped#${first}`]);
  // The snapshot was saved before: the next activation has the count.
  const again = await a.spawn(Holder, { id: 'stopped', node: 'b' });
  assert.equal(await again.ask({ type: 'add', by: 1 }), 3);
});

test('a live migration hands the source state over once, and not the one now serving', async () => {
  const ref = await a.spawn(Holder, { id: 'moved', node: 'a' });
  await ref.ask({ type: 'add', by: 5 });
  const source = (await ref.ask({ type: 'serial' })) as number;
  const report = await a.migrate(ref, 'b');
  assert.equal(report.to, 'b');
  await waitUntil(() => of('moved').length > 0);
  assert.deepEqual(of('moved'), [`moved#${source}`]);
  const target = (await ref.ask({ type: 'serial' })) as number;
  assert.notEqual(target, source);
  assert.equal(await ref.ask({ type: 'add', by: 1 }), 6);
  assert.deepEqual(of('moved'), [`moved#${source}`]);
});

test("a move that fails at the commit: the target's staged state is handed over, the source's stays", async () => {
  // The source sends each change in a round before its pause, so the target stages the state early.
  const source = await connectCluster({ nats: nats.url, name: 'deact', log: () => undefined });
  const faulty = await connectCluster({ nats: nats.url, name: 'deact', log: () => undefined });
  try {
    await source.startNode({ id: 'source', actors: [Holder], maxPauseChangeBytes: 0 });
    await faulty.startNode({ id: 'faulty', actors: [Holder], faults: { handoff: 'commit' } });
    const ref = await a.spawn(Holder, { id: 'staged', node: 'source' });
    await ref.ask({ type: 'add', by: 2 });
    const serving = (await ref.ask({ type: 'serial' })) as number;
    await assert.rejects(a.migrate(ref, 'faulty'), /fault injected at the handoff step commit/);
    await waitUntil(() => of('staged').length > 0);
    assert.equal(of('staged').length, 1);
    assert.notEqual(of('staged')[0], `staged#${serving}`, 'the serving state was handed over');
    assert.equal(await ref.ask({ type: 'serial' }), serving);
    assert.equal(await ref.ask({ type: 'add', by: 1 }), 3);
  } finally {
    await faulty.close();
    await source.close();
  }
});

test("a crash's restart hands the crashed state over; past the restart limit the last one goes too", async () => {
  const ref = await a.spawn(Holder, { id: 'crashy', node: 'a' });
  await ref.ask({ type: 'add', by: 1 });
  const crashed = (await ref.ask({ type: 'serial' })) as number;
  await assert.rejects(ref.ask({ type: 'crash' }), Crash);
  assert.equal(await ref.ask({ type: 'add', by: 1 }), 2);
  const restarted = (await ref.ask({ type: 'serial' })) as number;
  assert.deepEqual(of('crashy'), [`crashy#${crashed}`]);
  // A second crash within the limit of one restart (and a restore that would throw besides): it fails.
  await ref.ask({ type: 'poison' });
  await assert.rejects(ref.ask({ type: 'crash' }), Crash);
  await waitUntil(() => of('crashy').length === 2);
  assert.deepEqual(of('crashy'), [`crashy#${crashed}`, `crashy#${restarted}`]);
});

test('a deactivate that throws is logged, and the stop completes', async () => {
  const ref = await a.spawn(Holder, { id: 'throws', node: 'a' });
  await ref.ask({ type: 'add', by: 1 });
  await a.stop(ref);
  assert.equal(of('throws').length, 1);
  assert.ok(
    logged.some((l) => l.startsWith('warn deactivate threw')),
    logged.join('\n'),
  );
  // Stopped all the same: the node no longer hosts it (locate's cache may lag the directory).
  assert.ok(!a.node!.inspect().actors.some((x) => x.id === 'throws'));
});
