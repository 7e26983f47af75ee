// The dashboard's event streams over real HTTP connections: a client that stops reading must not make
// the server buffer every state for it, while one that reads keeps getting every state.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { EventStreams } from '../src/dashboard/server.js';

/** Larger than a response's highWaterMark, so that every write of it waits for 'drain'. */
const EVENT = `event: state\ndata: ${'x'.repeat(256 * 1024)}\n\n`;
/** Far beyond what loopback's socket buffers take from a client that stopped reading. */
const MAX_SENT_BYTES = 64 * 1024 * 1024;

/**
 * Two clients of `streams` on a real server: `stalled` stops reading at once, the other reads.
 * `sendUntil` sends EVENT until `done()` or MAX_SENT_BYTES, each once the reader has read the last.
 */
async function twoClients(streams: EventStreams) {
  const opened: ServerResponse[] = [];
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.flushHeaders();
    streams.add(res);
    opened.push(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/events`;
  const open = () => new Promise<IncomingMessage>((resolve) => get(url, resolve));

  const stalled = await open();
  stalled.pause();
  // Its client sees the stream cut short ("aborted"); the server's side of it is what is checked.
  stalled.on('error', () => undefined);
  const reader = await open();
  let received = 0;
  let want = 0;
  let caughtUp: (() => void) | undefined;
  reader.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received >= want) caughtUp?.();
  });

  return {
    stalled: opened[0]!,
    reader: opened[1]!,
    async sendUntil(done: () => boolean): Promise<{ sent: number; received: number }> {
      let sent = 0;
      while (!done() && sent < MAX_SENT_BYTES) {
        streams.send(EVENT);
        sent += EVENT.length;
        want = sent;
        if (received < want) await new Promise<void>((resolve) => (caughtUp = resolve));
      }
      return { sent, received };
    },
    close() {
      streams.end();
      server.closeAllConnections();
      server.close();
    },
  };
}

test('a stream whose client stopped reading gets no more states than it can hold', async () => {
  const streams = new EventStreams(Number.POSITIVE_INFINITY);
  const c = await twoClients(streams);
  try {
    let held = 0;
    const { sent, received } = await c.sendUntil(() => {
      held = Math.max(held, c.stalled.writableLength);
      return false;
    });
    // One state at a time (and its chunk's framing), not every state sent.
    assert.ok(held < 2 * EVENT.length, `the stalled stream held ${held} bytes`);
    assert.equal(received, sent, 'the reader got every state');
    assert.equal(streams.size, 2);
  } finally {
    c.close();
  }
});

test('a stream whose client stopped reading is closed once it holds more than the cap', async (t) => {
  // Any byte still held when the next state is due is past it: the paced reader holds none then.
  const streams = new EventStreams(0);
  const c = await twoClients(streams);
  try {
    let stalledClosed = false;
    c.stalled.on('close', () => {
      stalledClosed = true;
    });
    const { sent, received } = await c.sendUntil(() => stalledClosed);
    assert.ok(stalledClosed, `the stalled stream is still open after ${sent} bytes were sent to each stream`);
    assert.equal(received, sent, 'the reader got every state');
    assert.equal(streams.size, 1);
    assert.ok(!c.reader.destroyed, "the reader's stream is still open");
    t.diagnostic(`the stalled stream was closed after ${sent} bytes`);
  } finally {
    c.close();
  }
});
