// Errors that leave the library: what crosses back from an actor is rebuilt as its own class with
// `remote === true`; ask and tell never throw synchronously; connecting reports the server's state.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as runtime from '@stitch/runtime';
import {
  ActorStopped,
  AlreadyActive,
  BadMessage,
  type Cluster,
  ClusterClosed,
  ClusterNotInitialized,
  ConnectionFailed,
  Crash,
  connectCluster,
  DuplicateMessage,
  defineActor,
  type EmbeddedNats,
  findNatsServer,
  HandlerError,
  InvalidOptions,
  JetStreamDisabled,
  MigrationFailed,
  NatsServerNotFound,
  NatsStartFailed,
  NoNodeAvailable,
  NoResponders,
  Overloaded,
  PayloadTooLarge,
  RemoteError,
  RuntimeErrorCode,
  StaleFence,
  StitchError,
  StreamBroken,
  StreamCancelled,
  startEmbeddedNats,
  Timeout,
  WireVersionUnsupported,
} from '@stitch/runtime';

const CLUSTER = 'errs';
const quiet = () => undefined;

class QuotaExceeded extends Error {
  override name = 'QuotaExceeded';
  readonly code = 'QUOTA_EXCEEDED';
}

/** Each handler fails in one way; hosted by a node in this test process. */
const Thrower = defineActor({
  type: 'thrower',
  handlers: {
    options() {
      throw new InvalidOptions('the handler found an invalid option');
    },
    crash() {
      throw new Crash('asked to crash');
    },
    plain() {
      throw new Error('plain failure');
    },
    typeError(_s: unknown, m: { obj: { f?: () => void } }) {
      m.obj.f!(); // a real TypeError: f is not a function
    },
    app() {
      throw new QuotaExceeded('the quota is used up');
    },
    ok: () => 'fine',
  },
  restart: { maxRestarts: 100, withinMs: 60_000, backoffMs: 1 },
});

/** Counts its applications; its reply is too large for the dedup record to keep. */
let bigApplied = 0;
const Big = defineActor({
  type: 'big',
  handlers: {
    big() {
      bigApplied++;
      return 'x'.repeat(1000);
    },
  },
});

/** One message at a time, held until the test lets it go. */
let entered: () => void = () => undefined;
let release: () => void = () => undefined;
const Slow = defineActor({
  type: 'slow',
  handlers: {
    async hold() {
      const gate = new Promise<void>((r) => {
        release = r;
      });
      entered();
      await gate;
      return 'released';
    },
  },
  mailbox: { capacity: 1, perCaller: 1 },
});

/** Settles `p`, expecting a rejection; the rejection reason. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (value) => assert.fail(`resolved with ${JSON.stringify(value)}`),
    (err: unknown) => err,
  );
}

/** `p` rejects with an instance of `Class` that crossed NATS, carrying `code`. */
async function remote(
  p: Promise<unknown>,
  // biome-ignore lint/suspicious/noExplicitAny: any StitchError subclass, whatever its constructor takes
  Class: new (...args: any[]) => StitchError,
  code: string,
): Promise<StitchError> {
  const err = await rejection(p);
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${String(err)}`);
  assert.equal(err.constructor, Class, `rebuilt as ${err.constructor.name} itself`);
  assert.equal(err.remote, true, `${Class.name} is marked remote`);
  assert.equal(err.code, code);
  return err;
}

/** Calls `send` and fails the test if it throws synchronously; the promise it returned otherwise. */
function noSyncThrow(what: string, send: () => Promise<unknown>): Promise<unknown> {
  let p: Promise<unknown> | undefined;
  assert.doesNotThrow(() => {
    p = send();
  }, `${what} threw synchronously`);
  assert.ok(p instanceof Promise, `${what} returned a promise`);
  return p;
}

/** A port nothing listens on (free a moment ago). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

describe('runtime errors', () => {
  let nats: EmbeddedNats;
  let hostA: Cluster;
  let hostB: Cluster;
  let client: Cluster;

  before(async () => {
    nats = await startEmbeddedNats();
    hostA = await connectCluster({ nats: nats.url, name: CLUSTER, log: quiet });
    await hostA.startNode({ id: 'e-a', actors: [Thrower, Big, Slow] });
    hostB = await connectCluster({ nats: nats.url, name: CLUSTER, log: quiet });
    await hostB.startNode({ id: 'e-b', actors: [Thrower, Big, Slow] });
    client = await connectCluster({ nats: nats.url, name: CLUSTER, log: quiet });
  });

  after(async () => {
    await client?.close();
    await hostB?.close();
    await hostA?.close();
    await nats?.stop();
  });

  describe('codes that cross from an actor become their own class, remote', () => {
    test('handler errors: InvalidOptions, Crash, HandlerError (Error, TypeError), application codes', async () => {
      const ref = await client.spawn(Thrower, { id: 't1', node: 'e-a' });
      await remote(ref.ask({ type: 'options' }), InvalidOptions, 'RUNTIME_OPTIONS');
      await remote(ref.ask({ type: 'crash' }), Crash, 'ACTOR_CRASH');
      const plain = await remote(ref.ask({ type: 'plain' }), HandlerError, 'HANDLER_ERROR');
      assert.equal((plain as HandlerError).remoteName, 'Error');
      assert.equal(plain.message, 'plain failure');
      const typeError = await remote(ref.ask({ type: 'typeError', obj: {} }), HandlerError, 'HANDLER_ERROR');
      assert.equal((typeError as HandlerError).remoteName, 'TypeError');
      assert.match(typeError.message, /not a function/);
      const app = await remote(ref.ask({ type: 'app' }), RemoteError, 'QUOTA_EXCEEDED');
      assert.equal((app as RemoteError).remoteName, 'QuotaExceeded');
      assert.equal(app.message, 'the quota is used up');
      assert.equal(await ref.ask({ type: 'ok' }), 'fine', 'the actor still answers');
    });

    test('the same errors inside one coalesced batch of asks', async () => {
      const ref = await client.spawn(Thrower, { id: 't2', node: 'e-a' });
      const any = client.ref({ type: 'thrower', id: 't2' });
      // Sent in one tick, so they travel as one batch and their replies come back as one.
      const [options, plain, typeError, app, bad, ok] = [
        ref.ask({ type: 'options' }),
        ref.ask({ type: 'plain' }),
        ref.ask({ type: 'typeError', obj: {} }),
        ref.ask({ type: 'app' }),
        any.ask({ type: 'nope' }),
        ref.ask({ type: 'ok' }),
      ];
      await remote(options, InvalidOptions, 'RUNTIME_OPTIONS');
      await remote(plain, HandlerError, 'HANDLER_ERROR');
      await remote(typeError, HandlerError, 'HANDLER_ERROR');
      await remote(app, RemoteError, 'QUOTA_EXCEEDED');
      await remote(bad, BadMessage, 'ACTOR_BAD_MESSAGE');
      assert.equal(await ok, 'fine');
    });

    test('BadMessage: a message naming no handler', async () => {
      await client.spawn(Thrower, { id: 't3', node: 'e-a' });
      const any = client.ref({ type: 'thrower', id: 't3' });
      const err = await remote(any.ask({ type: 'nope' }), BadMessage, 'ACTOR_BAD_MESSAGE');
      assert.match(err.message, /no handler "nope"/);
      await remote(any.ask({ type: 'nope' }, { mode: 'durable' }), BadMessage, 'ACTOR_BAD_MESSAGE');
    });

    test('Overloaded: a full mailbox refuses the message', async () => {
      const ref = await client.spawn(Slow, { id: 's1', node: 'e-a' });
      const running = new Promise<void>((r) => {
        entered = r;
      });
      const first = ref.ask({ type: 'hold' });
      await running;
      // Capacity 1, taken by the running turn.
      const err = await remote(ref.ask({ type: 'hold' }), Overloaded, 'ACTOR_OVERLOADED');
      assert.match(err.message, /mailbox is full/);
      release();
      assert.equal(await first, 'released');
    });

    test('DuplicateMessage: a repeated durable ask whose reply was too large to keep', async () => {
      // Reached end to end inside the stream's duplicate window: the repeat publish is dropped, the
      // caller asks the actor for the recorded outcome, and the record kept DuplicateMessage instead
      // of the 1000-byte reply.
      const ref = await client.spawn(Big, { id: 'b1', node: 'e-a' });
      const options = { mode: 'durable', idempotencyKey: 'dup-1' } as const;
      assert.equal(await ref.ask({ type: 'big' }, options), 'x'.repeat(1000));
      const err = await remote(ref.ask({ type: 'big' }, options), DuplicateMessage, 'ACTOR_DUPLICATE');
      assert.match(err.message, /dup-1 was already applied/);
      assert.equal(bigApplied, 1, 'applied once');
    });

    test('activation requests: InvalidOptions for an unknown type, AlreadyActive on a second node', async () => {
      await remote(client.spawn('no-such-type', { node: 'e-a' }), InvalidOptions, 'RUNTIME_OPTIONS');
      await client.spawn(Thrower, { id: 'aa', node: 'e-a' });
      const err = await remote(
        client.spawn(Thrower, { id: 'aa', node: 'e-b' }),
        AlreadyActive,
        'ACTOR_ALREADY_ACTIVE',
      );
      assert.match(err.message, /already active on node e-a/);
    });

    test('errors raised on the caller itself are not marked remote', async () => {
      const err = await rejection(client.ref({ type: 'thrower', id: 'never-spawned' }).ask({ type: 'ok' }));
      assert.ok(err instanceof NoResponders, String(err));
      assert.equal(err.remote, false);
    });
  });

  describe('ask and tell never throw synchronously', () => {
    // msgpackr refuses a symbol ("Unknown type: symbol"); functions and BigInts it encodes.
    const unencodable = { type: 'ok', s: Symbol('not encodable') };

    test('an unencodable message rejects, through plain refs and refs from get', async () => {
      const plain = await client.spawn(Thrower, { id: 'u1', node: 'e-a' });
      const virtual = client.get(Thrower, 'u2');
      for (const [what, ref] of [
        ['plain ref', plain],
        ['get ref', virtual],
      ] as const) {
        const ask = noSyncThrow(`${what} ask`, () => ref.ask(unencodable as never));
        assert.ok((await rejection(ask)) instanceof Error);
        const tell = noSyncThrow(`${what} tell`, () => ref.tell(unencodable as never));
        assert.ok((await rejection(tell)) instanceof Error);
        const durable = noSyncThrow(`${what} durable ask`, () =>
          ref.ask(unencodable as never, { mode: 'durable' }),
        );
        assert.ok((await rejection(durable)) instanceof Error);
      }
      assert.equal(await plain.ask({ type: 'ok' }), 'fine');
    });

    test('an unencodable message rejects with a StitchError', async () => {
      const ref = await client.spawn(Thrower, { id: 'u3', node: 'e-a' });
      const err = await rejection(ref.ask(unencodable as never));
      assert.ok(err instanceof StitchError, `${String(err)} is not a StitchError`);
    });

    test('after close(): asks and tells reject with ClusterClosed', async () => {
      const doomed = await connectCluster({ nats: nats.url, name: CLUSTER, log: quiet });
      await doomed.spawn(Thrower, { id: 'c1', node: 'e-a' });
      const plain = doomed.ref<typeof Thrower>({ type: 'thrower', id: 'c1' });
      const virtual = doomed.get(Thrower, 'c1');
      assert.equal(await virtual.ask({ type: 'ok' }), 'fine');
      await doomed.close();
      for (const [what, send] of [
        ['ask', () => plain.ask({ type: 'ok' })],
        ['durable ask', () => plain.ask({ type: 'ok' }, { mode: 'durable' })],
        ['tell', () => plain.tell({ type: 'ok' })],
        ['inspect', () => plain.inspect()],
      ] as const) {
        const err = await rejection(noSyncThrow(what, send));
        assert.ok(err instanceof ClusterClosed, `${what}: ${String(err)}`);
        assert.equal(err.code, 'CLUSTER_CLOSED');
      }
      // Refs from get never throw either (what they reject with is the todo test below).
      for (const [what, send] of [
        ['get ask', () => virtual.ask({ type: 'ok' })],
        ['get tell', () => virtual.tell({ type: 'ok' })],
      ] as const) {
        assert.ok((await rejection(noSyncThrow(what, send))) instanceof Error);
      }
      await assert.rejects(
        noSyncThrow('spawn', () => doomed.spawn(Thrower)) as Promise<unknown>,
        ClusterClosed,
      );
    });

    test('after close(): refs from get reject with ClusterClosed too', async () => {
      const doomed = await connectCluster({ nats: nats.url, name: CLUSTER, log: quiet });
      const virtual = doomed.get(Thrower, 'c3');
      assert.equal(await virtual.ask({ type: 'ok' }), 'fine');
      await doomed.close();
      for (const [what, send] of [
        ['ask', () => virtual.ask({ type: 'ok' })],
        ['durable ask', () => virtual.ask({ type: 'ok' }, { mode: 'durable' })],
        ['tell', () => virtual.tell({ type: 'ok' })],
      ] as const) {
        const err = await rejection(noSyncThrow(what, send));
        assert.ok(err instanceof ClusterClosed, `${what}: ${String(err)}`);
      }
    });
  });
});

describe('connecting', () => {
  const servers: { child: ChildProcess; dir: string }[] = [];
  let noJs: EmbeddedNats | undefined;
  let late: NodeJS.Timeout | undefined;

  after(async () => {
    clearTimeout(late);
    for (const { child, dir } of servers) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    }
    await noJs?.stop();
  });

  test('nothing listening: ConnectionFailed naming the URL', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const err = await rejection(connectCluster({ nats: url, name: 'c', log: quiet }));
    assert.ok(err instanceof ConnectionFailed, String(err));
    assert.equal(err.url, url);
    assert.equal(err.code, 'NATS_CONNECT');
    assert.equal(err.remote, false);
    assert.match(err.message, /waitForServerMs/);
  });

  test('waitForServerMs keeps trying until a server comes up on the port', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    let started = false;
    const connecting = connectCluster({ nats: url, name: 'late', waitForServerMs: 30_000, log: quiet });
    late = setTimeout(() => {
      const dir = mkdtempSync(join(tmpdir(), 'stitch-errors-test-'));
      const child = spawn(findNatsServer(), ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], {
        stdio: 'ignore',
      });
      servers.push({ child, dir });
      started = true;
    }, 500);
    const cluster = await connecting;
    try {
      assert.ok(started, 'connected only once the server was started');
      assert.deepEqual(await cluster.nodes(), []);
    } finally {
      await cluster.close();
    }
  });

  test('a server without JetStream: JetStreamDisabled', async () => {
    noJs = await startEmbeddedNats({ jetstream: false });
    const err = await rejection(connectCluster({ nats: noJs.url, name: 'nojs', log: quiet }));
    assert.ok(err instanceof JetStreamDisabled, String(err));
    assert.equal(err.code, 'JETSTREAM_DISABLED');
    assert.ok(err.message.includes(noJs.url), err.message);
  });
});

describe('error codes', () => {
  test('RuntimeErrorCode values are unique', () => {
    const values = Object.values(RuntimeErrorCode);
    assert.equal(new Set(values).size, values.length);
  });

  test('every exported error class carries a code from RuntimeErrorCode, and every code has a class', () => {
    const instances: Record<string, StitchError> = {
      NatsServerNotFound: new NatsServerNotFound('nowhere'),
      NatsStartFailed: new NatsStartFailed('no reason', ''),
      ConnectionFailed: new ConnectionFailed('nats://x:1', 'refused'),
      JetStreamDisabled: new JetStreamDisabled('nats://x:1'),
      ClusterNotInitialized: new ClusterNotInitialized('c', 'stream'),
      InvalidOptions: new InvalidOptions('bad'),
      Timeout: new Timeout('actor a/b', 10),
      NoResponders: new NoResponders('actor a/b'),
      Overloaded: new Overloaded('full'),
      BadMessage: new BadMessage('bad'),
      PayloadTooLarge: new PayloadTooLarge(2, 1, 'chunk it'),
      AlreadyActive: new AlreadyActive('a.b', 'n'),
      Crash: new Crash('why'),
      DuplicateMessage: new DuplicateMessage('k', 1000),
      HandlerError: new HandlerError('TypeError', 'x'),
      ActorStopped: new ActorStopped('a.b', 'stopped'),
      NoNodeAvailable: new NoNodeAvailable('none'),
      ClusterClosed: new ClusterClosed(),
      StaleFence: new StaleFence('coordinator', 1, 2),
      MigrationFailed: new MigrationFailed('a.b', 'commit', 'the target refused'),
      WireVersionUnsupported: new WireVersionUnsupported('2.0', '1.0'),
      StreamCancelled: new StreamCancelled('the reader cancelled it'),
      StreamBroken: new StreamBroken('item 3 is missing'),
    };
    // Every StitchError subclass the package exports is in the table (RemoteError carries the code of
    // the application's error instead).
    const exported = Object.entries(runtime)
      .filter(([, v]) => typeof v === 'function' && v.prototype instanceof StitchError)
      .map(([name]) => name)
      .filter((name) => name !== 'RemoteError')
      .sort();
    assert.deepEqual(exported, Object.keys(instances).sort());
    const codes = new Set<string>(Object.values(RuntimeErrorCode));
    for (const [name, err] of Object.entries(instances)) {
      assert.equal(err.constructor.name, name);
      assert.equal(err.name, name);
      assert.ok(err instanceof StitchError && err instanceof Error);
      assert.ok(codes.has(err.code), `${name} has code ${err.code}, not a RuntimeErrorCode`);
      assert.equal(err.remote, false);
    }
    assert.deepEqual(
      [...new Set(Object.values(instances).map((e) => e.code))].sort(),
      [...codes].sort(),
      'one class per code',
    );
    const app = new RemoteError('QUOTA_EXCEEDED', 'QuotaExceeded', 'no more');
    assert.equal(app.code, 'QUOTA_EXCEEDED');
    assert.ok(app instanceof StitchError);
  });
});
