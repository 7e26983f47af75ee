import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headers } from '@nats-io/transport-node';
import fc from 'fast-check';
import { BadMessage, InvalidOptions } from '../src/index.js';
import { Assembler, decode, encode, isTraceparent, names, newTraceparent, split } from '../src/internal.js';
import { envelopeBlock, envelopeHeaders, envelopeOf, H, readHeaders } from '../src/wire/envelope.js';
import { OutgoingHeaders } from '../src/wire/outgoing-headers.js';

test('codec keeps typed arrays typed and round-trips plain data', () => {
  const value = {
    f: new Float32Array([1.5, -2]),
    i: new BigInt64Array([3n]),
    u: new Uint8Array([1, 2]),
    s: 'x',
    n: [1, null],
  };
  const back = decode(encode(value)) as typeof value;
  assert.ok(
    back.f instanceof Float32Array && back.i instanceof BigInt64Array && back.u instanceof Uint8Array,
  );
  assert.deepEqual(back, value);
  // A `__proto__` key is the one JSON value that does not round-trip: see the next test.
  const json = fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"__proto__"'));
  fc.assert(fc.property(json, (v) => assert.deepEqual(decode(encode(v)), JSON.parse(JSON.stringify(v)))));
});

test('a __proto__ key arrives renamed, never as the prototype of the decoded object', () => {
  const hostile = JSON.parse('{"__proto__": {"isAdmin": true}, "b": 2}');
  const back = decode(encode(hostile)) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  assert.equal(back.isAdmin, undefined);
  assert.deepEqual(back, { __proto_: { isAdmin: true }, b: 2 });
});

test('garbage bytes decode to a typed BadMessage', () => {
  assert.throws(() => decode(new Uint8Array([0xc1, 0xff, 0x00])), BadMessage);
  assert.throws(() => decode(new Uint8Array([0x82, 0xa1])), BadMessage);
  assert.throws(() => decode(new Uint8Array()), BadMessage);
});

test('chunks reassemble in any order; an incomplete message yields nothing', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 5000 }),
      fc.integer({ min: 1, max: 700 }),
      fc.boolean(),
      (data, size, shuffle) => {
        const parts = split(data, size);
        const order = parts.map((_, i) => i);
        if (shuffle) order.reverse();
        const asm = new Assembler();
        let whole: Uint8Array | undefined;
        for (const [n, i] of order.entries()) {
          whole = asm.add('k', `id:${i}:${parts.length}`, parts[i]!);
          if (n < order.length - 1) assert.equal(whole, undefined);
        }
        assert.deepEqual(new Uint8Array(whole!), data);
        assert.equal(asm.pending, 0);
      },
    ),
  );
  const asm = new Assembler();
  assert.equal(asm.add('k', 'bad', new Uint8Array(1)), undefined);
  assert.equal(asm.add('k', 'id:3:2', new Uint8Array(1)), undefined);
});

test('traceparents are W3C-shaped and unique', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const t = newTraceparent();
    assert.ok(isTraceparent(t), t);
    seen.add(t);
  }
  assert.equal(seen.size, 1000);
  assert.ok(!isTraceparent('00-abc-def-01'));
  const good = newTraceparent(false);
  assert.ok(isTraceparent(good));
  // One character off at each position: upper case, a non-hex letter, a dash moved, a non-ASCII digit.
  for (let i = 0; i < good.length; i++) {
    for (const c of ['A', 'g', '-', '٣']) {
      const bad = good.slice(0, i) + c + good.slice(i + 1);
      if (bad !== good) assert.ok(!isTraceparent(bad), bad);
    }
  }
});

test('names are namespaced by cluster and refuse unsafe tokens', () => {
  const n = names('prod');
  assert.equal(n.actor('counter', 'a-1'), 'stitch.prod.actor.counter.a-1');
  assert.equal(n.durable('counter', 'a-1'), 'stitch.prod.durable.counter.a-1');
  assert.equal(n.stream, 'stitch_prod_mailbox');
  assert.equal(n.nodesBucket, 'stitch_prod_nodes');
  assert.throws(() => names('a.b'), InvalidOptions);
  assert.throws(() => names('*'), InvalidOptions);
});

test('received stitch headers are read in one pass, first value wins, foreign ones get defaults', () => {
  const h = headers();
  h.set('traceparent', '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01');
  h.set('Stitch-Sender', 'host-1');
  h.set('Stitch-Deadline', '1700000000000');
  h.append('Stitch-Idempotency-Key', 'k1');
  h.append('Stitch-Idempotency-Key', 'k2');
  h.set('Stitch-Batch', '3');
  h.set('X-Other', 'ignored');
  const read = readHeaders(h);
  assert.deepEqual(read, {
    traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01',
    sender: 'host-1',
    deadline: '1700000000000',
    idempotencyKey: 'k1',
    batch: '3',
  });
  assert.deepEqual(envelopeOf(read), {
    traceparent: read.traceparent,
    sender: 'host-1',
    deadline: 1_700_000_000_000,
    idempotencyKey: 'k1',
  });
  const foreign = envelopeOf(readHeaders(undefined));
  assert.equal(foreign.traceparent, '', 'checked, and replaced, where a handler reads it');
  assert.equal(foreign.sender, 'unknown');
  assert.equal(foreign.deadline, Number.POSITIVE_INFINITY);
  assert.equal(foreign.idempotencyKey, undefined);
});

test('outgoing headers encode as nats.js headers do, and read back the same', () => {
  const mine = new OutgoingHeaders();
  const theirs = headers();
  for (const [k, v] of [
    ['traceparent', '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01'],
    ['Stitch-Idempotency-Key', '  schlüssel ✓ '],
    ['Stitch-Idempotency-Key', 'second'],
    ['Nats-Msg-Id', 'm-1'],
  ] as const) {
    mine.append(k, v);
    theirs.append(k, v);
  }
  mine.set('Nats-Msg-Id', 'm-2');
  theirs.set('Nats-Msg-Id', 'm-2');
  assert.deepEqual(
    Buffer.from(mine.encode()),
    Buffer.from((theirs as unknown as { encode(): Uint8Array }).encode()),
  );
  assert.equal(mine.get('Stitch-Idempotency-Key'), 'schlüssel ✓');
  assert.equal(mine.last('Stitch-Idempotency-Key'), 'second');
  assert.deepEqual(mine.keys(), ['traceparent', 'Stitch-Idempotency-Key', 'Nats-Msg-Id']);
  mine.delete('traceparent');
  assert.equal(mine.has('traceparent'), false);
  assert.throws(() => mine.set('X', 'a\r\nInjected: yes'), InvalidOptions);
  assert.throws(() => mine.set('Bad Key', 'v'), InvalidOptions);
});

test('the envelope block is what the envelope headers encode to, checked alike', () => {
  const envs = [
    { traceparent: newTraceparent(), sender: 'host-1', deadline: 1_700_000_000_000 },
    { traceparent: ' 00-abc ', sender: 'hôte ✓', deadline: 5, idempotencyKey: ' schlüssel: ü ' },
    { traceparent: newTraceparent(), sender: 'host-2', deadline: 7, seq: 42, idempotencyKey: 'k' },
    { traceparent: newTraceparent(), sender: 'host-3', deadline: 7, seq: 42, prev: 40 },
  ];
  for (const env of envs) assert.equal(envelopeBlock(env), envelopeHeaders(env).toString());
  const bad = { traceparent: 'x\r\nInjected: yes', sender: 's', deadline: 1 };
  assert.throws(() => envelopeBlock(bad), InvalidOptions);
  assert.throws(() => envelopeHeaders(bad), InvalidOptions);
  assert.throws(() => envelopeBlock({ ...envs[0]!, idempotencyKey: 'k\n' }), InvalidOptions);
});

test("a sender's message count travels in the envelope; anything but a positive safe integer is ignored", () => {
  const env = { traceparent: newTraceparent(), sender: 's', deadline: 9, seq: 7 };
  assert.equal(envelopeOf(readHeaders(envelopeHeaders(env))).seq, 7);
  for (const bad of ['0', '-3', '1.5', 'x', '9007199254740993', '']) {
    const h = headers();
    h.set(H.seq, bad);
    assert.equal(envelopeOf(readHeaders(h)).seq, undefined, JSON.stringify(bad));
  }
});

test("the count of the sender's previous message to the actor travels too, only below the message's own", () => {
  const env = { traceparent: newTraceparent(), sender: 's', deadline: 9, seq: 7, prev: 3 };
  assert.equal(envelopeOf(readHeaders(envelopeHeaders(env))).prev, 3);
  // 0: the sender sent this actor nothing before.
  assert.equal(envelopeOf(readHeaders(envelopeHeaders({ ...env, prev: 0 }))).prev, 0);
  for (const [seq, prev] of [
    ['7', '7'],
    ['7', '9'],
    ['7', '-1'],
    ['7', ''],
    ['7', 'x'],
    ['x', '3'],
    [undefined, '3'],
  ] as const) {
    const h = headers();
    if (seq !== undefined) h.set(H.seq, seq);
    h.set(H.prev, prev);
    assert.equal(envelopeOf(readHeaders(h)).prev, undefined, `${seq} ${prev}`);
  }
});
