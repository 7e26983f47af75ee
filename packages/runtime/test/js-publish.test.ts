// JetStream publishes acknowledged on stitch's own inbox, against a real nats-server: stored, a
// duplicate message id, a refusal with the server's reason, no stream at all, and no answer in time.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { systemClock } from '../src/clock.js';
import { type EmbeddedNats, startEmbeddedNats } from '../src/cluster/embedded-nats.js';
import { Timeout } from '../src/errors.js';
import { Guard } from '../src/guard.js';
import { jetStreamPublisher } from '../src/wire/js-publish.js';
import { OutgoingHeaders } from '../src/wire/outgoing-headers.js';

let nats: EmbeddedNats;
let nc: NatsConnection;

before(async () => {
  nats = await startEmbeddedNats();
  nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'pub', subjects: ['pub.>'] });
  await jsm.streams.add({ name: 'tiny', subjects: ['tiny.>'], max_msgs: 1, discard: DiscardPolicy.New });
  // Takes requests and never answers: a stream that does not acknowledge.
  nc.subscribe('silent.>', { callback: () => undefined });
});

after(async () => {
  await nc?.close();
  await nats?.stop();
});

const publisher = () => jetStreamPublisher(nc, '_INBOX', systemClock, new Guard(() => undefined));
const data = new Uint8Array([1, 2, 3]);

function withId(id: string): OutgoingHeaders {
  const h = new OutgoingHeaders();
  h.set('Nats-Msg-Id', id);
  return h;
}

test('a stored publish is acknowledged with its stream and sequence; a repeated message id as a duplicate', async () => {
  const first = await publisher().publish('pub.a', data, withId('m1'), 5000);
  assert.equal(first.stream, 'pub');
  assert.ok((first.seq ?? 0) >= 1);
  assert.ok(!first.error && !first.duplicate);
  const again = await publisher().publish('pub.a', data, withId('m1'), 5000);
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, first.seq);
});

test('a refused publish carries the server reason; a compare-and-set conflict reads as one', async () => {
  await publisher().publish('tiny.a', data, new OutgoingHeaders(), 5000);
  const full = await publisher().publish('tiny.a', data, new OutgoingHeaders(), 5000);
  assert.match(full.error?.description ?? '', /maximum messages/i);
  const h = new OutgoingHeaders();
  h.set('Nats-Expected-Last-Subject-Sequence', '12345');
  const conflict = await publisher().publish('pub.b', data, h, 5000);
  assert.match(conflict.error?.description ?? '', /wrong last sequence/i);
});

test('no stream for the subject is told apart from a refusal; no answer in time is a Timeout', async () => {
  const none = await publisher().publish('nowhere.a', data, new OutgoingHeaders(), 5000);
  assert.equal(none.noStream, true);
  await assert.rejects(publisher().publish('silent.a', data, new OutgoingHeaders(), 200), Timeout);
});
