// bench/serial-gap: why serial round trips cost more than the work added to them. Between the same two
// processes as bench/actors (this one and a forked responder, one local nats-server):
// - `serial_gap.spin`: a raw nats.js client that busy-waits `spin_us` before each publish, p50 of the
//   round trip: how much latency a few µs of caller work cost.
// - `serial_gap.gap`: per mode, p50 of the round trip and of the caller's gap: from a socket read (the
//   reply arriving) to the next socket write (the next request leaving). Modes: raw, raw_envelope,
//   fast, and raw_to_actor (a raw caller with hand-set envelope headers, answered by the stitch actor:
//   the responder's share of fast mode).
// Options: --serial=5000 (round trips per figure), --spins=0,3,5,10,20, --no-pin. One JSON object per line.
import net from 'node:net';
import { connect, createInbox } from '@nats-io/transport-node';
import { connectCluster, startEmbeddedNats } from '@stitch/runtime';
import { encode, envelopeHeaders, newTraceparent } from '@stitch/runtime/internal';
import { forkResponder, pinApart, type ResponderProcess } from './responder-process.js';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const SERIAL = Number(args.get('serial') ?? 5000);
const SPINS = (args.get('spins') ?? '0,3,5,10,20').split(',').map(Number);

// Instrumentation (diagnostic only): stamp each socket read, and measure to the next socket write.
let readAt = 0;
let gaps: number[] = [];
const write = net.Socket.prototype.write;
net.Socket.prototype.write = function (this: net.Socket, ...a: Parameters<typeof write>) {
  if (readAt) gaps.push(performance.now() - readAt);
  readAt = 0;
  return write.apply(this, a);
} as typeof write;
const emit = net.Socket.prototype.emit;
net.Socket.prototype.emit = function (this: net.Socket, event: string | symbol, ...a: unknown[]) {
  if (event === 'data') readAt = performance.now();
  return emit.apply(this, [event, ...a] as never);
} as typeof emit;

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]! * 1000;

async function serial(send: () => Promise<unknown>): Promise<{ p50_us: number; gap_p50_us: number }> {
  for (let i = 0; i < 500; i++) await send();
  gaps = [];
  const lat: number[] = [];
  for (let i = 0; i < SERIAL; i++) {
    const t0 = performance.now();
    await send();
    lat.push(performance.now() - t0);
  }
  return { p50_us: Math.round(p50(lat)), gap_p50_us: +p50(gaps).toFixed(1) };
}

const nats = await startEmbeddedNats();
let responder: ResponderProcess | undefined;
try {
  responder = await forkResponder(nats.url);
  const pinned = args.has('no-pin') ? 'off' : pinApart(responder);
  const raw = await connect({ servers: nats.url });
  const cluster = await connectCluster({ nats: nats.url, name: 'bench' });
  const msg = { type: 'echo', data: new Uint8Array(256).fill(7) };
  const body = encode(msg);
  const inbox = createInbox();
  let answered: () => void = () => undefined;
  raw.subscribe(`${inbox}.*`, { callback: () => answered() });
  const rawSend = (spinUs: number, headers: boolean) => () =>
    new Promise<void>((resolve) => {
      const until = performance.now() + spinUs / 1000;
      while (performance.now() < until);
      answered = resolve;
      const h = headers
        ? envelopeHeaders({ traceparent: newTraceparent(), sender: 'bench', deadline: Date.now() + 5000 })
        : undefined;
      raw.publish('bench.raw.echo', body, { reply: `${inbox}.1`, ...(h ? { headers: h } : {}) });
    });
  const ref = cluster.ref({ type: 'bench-echo', id: 'e1' });
  const modes: Record<string, () => Promise<unknown>> = {
    raw: rawSend(0, false),
    raw_envelope: rawSend(0, true),
    fast: () => ref.ask(msg as never),
    // The responder side of fast mode with a raw caller: the envelope headers by hand, to the actor.
    raw_to_actor: () =>
      new Promise<void>((resolve) => {
        answered = resolve;
        const h = envelopeHeaders({
          traceparent: newTraceparent(),
          sender: 'bench',
          deadline: Date.now() + 5000,
        });
        raw.publish('stitch.bench.actor.bench-echo.e1', body, { reply: `${inbox}.1`, headers: h });
      }),
  };
  for (const [mode, send] of Object.entries(modes)) {
    const r = await serial(send);
    process.stdout.write(`${JSON.stringify({ bench: 'serial_gap.gap', mode, ...r, pinned })}\n`);
  }
  for (const spin of SPINS) {
    const r = await serial(rawSend(spin, false));
    process.stdout.write(
      `${JSON.stringify({ bench: 'serial_gap.spin', mode: 'raw', spin_us: spin, ...r, pinned })}\n`,
    );
  }
  await cluster.close();
  await raw.close();
} finally {
  await responder?.stop();
  await nats.stop();
}
