// A durable message known by its acknowledgement subject (a migration's target reads the source's
// pulls, or gets the message forwarded): what the subject says of it, and what acknowledging sends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { AckSubjectDelivery, ackInfo, pulledDelivery } from '../src/actor/durable-delivery.js';

const V1 = '$JS.ACK.stitch_c_mailbox.stitch_c_t_a.3.42.7.1700000000000000000.5';
const V2 = '$JS.ACK.hub.ACCHASH.stitch_c_mailbox.stitch_c_t_a.1.43.8.1700000000000000000.0.tok';

function recording() {
  const sent: [string, string][] = [];
  const nc = {
    publish: (subject: string, data: string) => sent.push([subject, data]),
  } as unknown as NatsConnection;
  return { nc, sent };
}

test('an acknowledgement subject gives the stream, consumer, delivery count and stream sequence, in both forms', () => {
  assert.deepEqual(ackInfo(V1), {
    stream: 'stitch_c_mailbox',
    consumer: 'stitch_c_t_a',
    delivered: 3,
    seq: 42,
  });
  assert.deepEqual(ackInfo(V2), {
    stream: 'stitch_c_mailbox',
    consumer: 'stitch_c_t_a',
    delivered: 1,
    seq: 43,
  });
  for (const bad of [
    undefined,
    '',
    '_INBOX.abc',
    '$JS.ACK.s.c.1.42',
    '$JS.ACK.s.c.x.42.7.1.0',
    '$JS.ACK.s.c.1.0.7.1.0',
    '$JS.ACK.s.c.1.-4.7.1.0',
    '$JS.ACK..c.1.42.7.1.0',
    '$JS.ACK.s.c.1.99999999999999999.7.1.0',
  ])
    assert.equal(ackInfo(bad), undefined, String(bad));
});

test('acknowledging, giving back, terminating and extending publish to the subject what nats.js would', () => {
  const { nc, sent } = recording();
  const m = new AckSubjectDelivery(nc, V1, ackInfo(V1)!);
  assert.equal(m.seq, 42);
  assert.equal(m.redelivered, true);
  m.ack();
  m.nak();
  m.nak(1500);
  m.term();
  m.working();
  assert.deepEqual(sent, [
    [V1, '+ACK'],
    [V1, '-NAK'],
    [V1, '-NAK {"delay":1500000000}'],
    [V1, '+TERM'],
    [V1, '+WPI'],
  ]);
  assert.equal(new AckSubjectDelivery(nc, V2, ackInfo(V2)!).redelivered, false);
});

test("a message on a pull inbox taken over is the actor's only when the server delivered it from the actor's consumer", () => {
  const { nc } = recording();
  const data = new Uint8Array([1, 2]);
  const DURABLE = 'stitch.c.durable.t.a';
  const msg = (reply: string | undefined, subject = DURABLE) =>
    ({ subject, reply, data, headers: undefined }) as unknown as Msg;
  const pulled = (m: Msg, consumer = 'stitch_c_t_a', stream = 'stitch_c_mailbox') =>
    pulledDelivery(nc, m, stream, consumer, DURABLE);
  const m = pulled(msg(V1));
  assert.equal(m?.seq, 42);
  assert.equal(m?.data, data);
  // The server's status messages (heartbeats, expired pulls) have no reply; another consumer's are not this actor's.
  assert.equal(pulled(msg(undefined)), undefined);
  assert.equal(pulled(msg(V1), 'stitch_c_t_b'), undefined);
  assert.equal(pulled(msg(V1), 'stitch_c_t_a', 'other'), undefined);
  // A client that publishes to the inbox itself, with a forged acknowledgement subject: its message
  // has the inbox as its subject, not the actor's.
  assert.equal(pulled(msg(V1, '_INBOX.abc.1')), undefined);
});
