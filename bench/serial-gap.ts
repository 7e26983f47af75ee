// bench/serial-gap: where the time of a serial round trip goes. Between the same two processes as
// bench/actors (this one and a forked responder, one local nats-server, pinned apart), both with
// socket-stamps.ts preloaded, each round trip is cut into six parts that add up to it:
//   caller_us           reply read → next request's socket write starts (the caller's own work)
//   caller_write_us     that write(2): on loopback it also delivers to the server and wakes it
//   to_responder_us     write done → the responder reads the request (nats-server, wake-ups)
//   responder_us        request read → reply write starts (the responder's own work)
//   responder_write_us  the reply's write(2)
//   to_caller_us        write done → the caller reads the reply
// `cheap_writes` is the share of writes under 10 µs on each side: a write that finds the server's
// thread awake costs ~5 µs, one that must wake it ~15–20 µs on this VM.
// Modes: raw (nats.js echo), raw_envelope (raw + stitch envelope headers), raw_to_actor (a raw caller
// with the envelope headers → the stitch actor: the responder's share of fast), fast (stitch ask →
// stitch actor), raw_spin_<n> (raw, the caller busy-waiting n µs before each publish).
// Options: --serial=3000 (round trips per mode and round), --rounds=3, --spins=5,10,20, --no-pin.
// One JSON object per line.
import { fileURLToPath } from 'node:url';
import { connect, createInbox } from '@nats-io/transport-node';
import { connectCluster, startEmbeddedNats } from '@stitch/runtime';
import { encode, envelopeHeaders, newTraceparent } from '@stitch/runtime/internal';
import { forkResponder, pinApart, type ResponderProcess } from './responder-process.js';
import { Stamp, type Stamps, startStamps, takeStamps } from './socket-stamps.js';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
// --quick: a few hundred trips, one round (the test command runs this).
const QUICK = args.has('quick');
const SERIAL = Number(args.get('serial') ?? (QUICK ? 300 : 3000));
const ROUNDS = Number(args.get('rounds') ?? (QUICK ? 1 : 3));
const SPINS = (args.get('spins') ?? '5,10,20').split(',').filter(Boolean).map(Number);
const STAMPS = fileURLToPath(new URL('./socket-stamps.ts', import.meta.url));

const PARTS = [
  'caller_write_us',
  'to_responder_us',
  'responder_us',
  'responder_write_us',
  'to_caller_us',
  'caller_us',
] as const;
type Trip = Record<(typeof PARTS)[number] | 'round_trip_us', number>;

/**
 * Round trips found in the merged stamps of both sides: caller write (start, end), responder read,
 * responder write (start, end), caller read, next caller write start. Other traffic on either
 * connection (heartbeats, KV) breaks the pattern and that trip is skipped.
 */
function trips(caller: Stamps, responder: Stamps): Trip[] {
  const events = [
    ...caller.kinds.map((k, i) => ({ t: caller.times[i]!, e: `c${k}` })),
    ...responder.kinds.map((k, i) => ({ t: responder.times[i]!, e: `r${k}` })),
  ].sort((a, b) => a.t - b.t);
  const { read, writeStart, writeEnd } = Stamp;
  const pattern = [
    `c${writeStart}`,
    `c${writeEnd}`,
    `r${read}`,
    `r${writeStart}`,
    `r${writeEnd}`,
    `c${read}`,
    `c${writeStart}`,
  ];
  const out: Trip[] = [];
  for (let i = 0; i + pattern.length <= events.length; i++) {
    if (!pattern.every((e, j) => events[i + j]!.e === e)) continue;
    const t = events.slice(i, i + pattern.length).map((x) => x.t * 1000);
    out.push({
      caller_write_us: t[1]! - t[0]!,
      to_responder_us: t[2]! - t[1]!,
      responder_us: t[3]! - t[2]!,
      responder_write_us: t[4]! - t[3]!,
      to_caller_us: t[5]! - t[4]!,
      caller_us: t[6]! - t[5]!,
      round_trip_us: t[6]! - t[0]!,
    });
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;
const share = (xs: number[], below: number) => xs.filter((x) => x < below).length / xs.length;

const nats = await startEmbeddedNats();
let responder: ResponderProcess | undefined;
try {
  // Set before the responder is forked: it inherits it.
  process.env.STITCH_STAMP_PORT = new URL(nats.url.replace(/^nats:/, 'http:')).port;
  responder = await forkResponder(nats.url, ['--import', STAMPS]);
  const child = responder.child;
  const ask = <T>(request: string, answered: (m: unknown) => T | undefined) =>
    new Promise<T>((resolve) => {
      const onMessage = (m: unknown) => {
        const value = answered(m);
        if (value === undefined) return;
        child.off('message', onMessage);
        resolve(value);
      };
      child.on('message', onMessage);
      child.send(request);
    });
  const pinned = args.has('no-pin') ? 'off' : pinApart(responder);
  const raw = await connect({ servers: nats.url });
  const cluster = await connectCluster({ nats: nats.url, name: 'bench' });
  const msg = { type: 'echo', data: new Uint8Array(256).fill(7) };
  const body = encode(msg);
  const inbox = createInbox();
  let answered: () => void = () => undefined;
  raw.subscribe(`${inbox}.*`, { callback: () => answered() });
  let seq = 0;
  const rawSend = (subject: string, spinUs: number, headers: boolean) => () =>
    new Promise<void>((resolve) => {
      const until = performance.now() + spinUs / 1000;
      while (performance.now() < until);
      answered = resolve;
      const h = headers
        ? envelopeHeaders({ traceparent: newTraceparent(), sender: 'bench', deadline: Date.now() + 5000 })
        : undefined;
      raw.publish(subject, body, { reply: `${inbox}.${(seq++).toString(36)}`, ...(h ? { headers: h } : {}) });
    });
  const ref = cluster.ref({ type: 'bench-echo', id: 'e1' });
  const actorSubject = 'stitch.bench.actor.bench-echo.e1';
  const modes: Record<string, () => Promise<unknown>> = {
    raw: rawSend('bench.raw.echo', 0, false),
    raw_envelope: rawSend('bench.raw.echo', 0, true),
    raw_to_actor: rawSend(actorSubject, 0, true),
    fast: () => ref.ask(msg as never),
    ...Object.fromEntries(SPINS.map((us) => [`raw_spin_${us}`, rawSend('bench.raw.echo', us, false)])),
  };
  const found: Record<string, Trip[]> = Object.fromEntries(Object.keys(modes).map((m) => [m, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [mode, send] of Object.entries(modes)) {
      for (let i = 0; i < 300; i++) await send();
      await ask('stamps:start', (m) => (m === 'stamps:started' ? true : undefined));
      startStamps();
      for (let i = 0; i < SERIAL; i++) await send();
      const callerStamps = takeStamps();
      const responderStamps = await ask('stamps:take', (m) => (m as { stamps?: Stamps }).stamps);
      found[mode]!.push(...trips(callerStamps, responderStamps));
    }
  }
  for (const [mode, list] of Object.entries(found)) {
    const line: Record<string, unknown> = { bench: 'serial_gap.hops', mode, trips: list.length };
    line.round_trip_us = +median(list.map((t) => t.round_trip_us)).toFixed(1);
    for (const part of PARTS) line[part] = +median(list.map((t) => t[part])).toFixed(1);
    line.cheap_writes = {
      caller: +share(
        list.map((t) => t.caller_write_us),
        10,
      ).toFixed(2),
      responder: +share(
        list.map((t) => t.responder_write_us),
        10,
      ).toFixed(2),
    };
    line.pinned = pinned;
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  await cluster.close();
  await raw.close();
} finally {
  await responder?.stop();
  await nats.stop();
}
