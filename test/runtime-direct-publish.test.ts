// stitch's direct publish (packages/runtime/src/direct-publish.ts) against a real nats-server: it must
// hand nats.js's protocol handler the same bytes nats.js publish would, be taken with this nats.js,
// and leave every case it does not handle to nats.js, errors included.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { natsFastPathEnabled, OutgoingHeaders, publishDirect, publishOne } from '@stitch/runtime/internal';
import { natsForTests } from './fixtures/nats-connection.js';

/** Records the bytes each `sendCommand` call hands the protocol handler (the message as framed). */
function recordFrames(nc: NatsConnection): Uint8Array[] {
  const protocol = (nc as unknown as { protocol: { sendCommand(...a: unknown[]): void } }).protocol;
  const frames: Uint8Array[] = [];
  const original = protocol.sendCommand.bind(protocol);
  protocol.sendCommand = (cmd: unknown, ...payloads: unknown[]) => {
    const parts = [cmd, ...payloads].map((p) => (typeof p === 'string' ? Buffer.from(p) : (p as Uint8Array)));
    frames.push(Buffer.concat(parts));
    original(cmd, ...payloads);
  };
  return frames;
}

function outgoing(pairs: [string, string][]): OutgoingHeaders {
  const h = new OutgoingHeaders();
  for (const [k, v] of pairs) h.append(k, v);
  return h;
}

describe('direct publish', () => {
  const server = natsForTests();

  test('frames every kind of message as nats.js publish does, and is taken', () => {
    const { nc } = server;
    const frames = recordFrames(nc);
    const cases: { subject: string; reply?: string; headers?: [string, string][]; data: Uint8Array }[] = [
      { subject: 'a.b', data: new Uint8Array([1, 2, 3]) },
      { subject: 'a.b', reply: '_INBOX.x.1', data: new Uint8Array(0) },
      {
        subject: 'stitch.c.actor.t.i',
        reply: '_INBOX.y.z',
        headers: [
          ['traceparent', '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01'],
          ['Stitch-Sender', 'host-1'],
          ['Stitch-Idempotency-Key', ' schlüssel ✓ '],
        ],
        data: new Uint8Array(300).fill(9),
      },
      { subject: 'no.reply', headers: [['Stitch-Batch', '2']], data: new Uint8Array([7]) },
    ];
    for (const c of cases) {
      const headers = c.headers ? outgoing(c.headers) : undefined;
      const stats0 = nc.stats();
      nc.publish(c.subject, c.data, {
        ...(c.reply ? { reply: c.reply } : {}),
        ...(headers ? { headers } : {}),
      });
      const stats1 = nc.stats();
      const sent = publishDirect(nc, c.subject, c.data, c.reply, headers?.toString());
      // STITCH_NATS_FAST_PATH=0 turns the direct path off: nothing is sent, nats.js publishes instead.
      assert.equal(sent, natsFastPathEnabled);
      if (!sent) {
        frames.splice(0);
        continue;
      }
      const stats2 = nc.stats();
      const [theirs, mine] = frames.splice(0);
      assert.deepEqual(Buffer.from(mine!), Buffer.from(theirs!), c.subject);
      assert.equal(stats2.outMsgs - stats1.outMsgs, stats1.outMsgs - stats0.outMsgs);
      assert.equal(stats2.outBytes - stats1.outBytes, stats1.outBytes - stats0.outBytes);
    }
  });

  test('a directly published message arrives whole', async () => {
    const { nc } = server;
    const got = new Promise<Msg>((resolve) => {
      const sub = nc.subscribe('direct.arrives', {
        callback: (_err, m) => {
          sub.unsubscribe();
          resolve(m);
        },
      });
    });
    await nc.flush();
    const headers = outgoing([['Stitch-Sender', 'sender ü']]);
    publishOne(nc, 'direct.arrives', new Uint8Array([4, 5]), { reply: 'r.1', headers });
    const m = await got;
    assert.equal(m.reply, 'r.1');
    assert.equal(m.headers?.get('Stitch-Sender'), 'sender ü');
    assert.deepEqual([...m.data], [4, 5]);
  });

  test('leaves to nats.js what it does not handle, and nats.js errors still reach the caller', async () => {
    const { nats, nc } = server;
    const max = nc.info!.max_payload;
    assert.equal(publishDirect(nc, 'too.big', new Uint8Array(max + 1), undefined, undefined), false);
    assert.equal(publishDirect(nc, 'has space', new Uint8Array(1), undefined, undefined), false);
    assert.equal(publishDirect(nc, 'ok', new Uint8Array(1), 'bad reply', undefined), false);
    assert.equal(publishDirect(nc, '', new Uint8Array(1), undefined, undefined), false);
    assert.throws(() => publishOne(nc, 'has space', new Uint8Array(1), {}), /subject/i);
    const closed = await connect({ servers: nats.url });
    await closed.close();
    assert.equal(publishDirect(closed, 'a', new Uint8Array(1), undefined, undefined), false);
    assert.throws(() => publishOne(closed, 'a', new Uint8Array(1), {}), /closed/i);
  });
});
