// bench/actors: raw nats.js echo vs stitch `fast` vs `durable` asks between two processes through one
// local nats-server, and `raw_jetstream` (a nats.js JetStream work-queue round trip: publish with ack,
// a pull consumer in the responder, reply on core NATS, ack), the reference for durable mode. Per
// mode: pipelined throughput with N in flight, and serial round-trip p50/p99. Modes run interleaved
// in rounds; each figure is the median over rounds. One JSON object per line.
// Options: --payload=256 --inflight=64 --messages=20000 --durable-messages=5000 --serial=2000 --rounds=5
// --modes=raw,raw_envelope,fast,fast_otel,durable,raw_jetstream (raw must be among them for the ratios
// vs raw, raw_jetstream for durable's, fast for fast_otel's) --profile (cpu-prof the responder)
// --heap-profile (sample what the responder allocates, with what major collections freed; prints the
// top allocating functions and writes the profile to /tmp/prof) --no-pin (leave both processes to
// the scheduler; see pinApart). --quick: a small run (1 round, few messages, fast paths on only);
// explicit options still apply. durable and raw_jetstream send --durable-messages pipelined and
// --serial/4 serial.
// --nats-fast-path=both|on|off: with both (the default) the whole bench runs twice, with stitch's nats.js
// fast paths on and then off (STITCH_NATS_FAST_PATH=0 in both processes); each line says which.
// fast_otel: fast asks with OpenTelemetry on in both processes (@stitch/telemetry, 1 % of traces
// sampled — --otel-ratio=R for another share; 0 measures telemetry on with nothing sampled — exported
// over OTLP/HTTP, protobuf, to a local endpoint that drops them; 2 000 sampled asks first:
// --otel-warm-up). The runtime records its spans itself (the default under a parent-based sampler);
// fast_otel_sdk (not in the default modes) makes them as the SDK's spans instead, as `sdkSpans: true`
// does. Telemetry is started in both processes when a fast_otel mode runs, and the runtime's spans are
// switched on for those modes only, so every other mode runs the runtime's telemetry-off path.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { connect, createInbox, headers, type NatsConnection } from '@nats-io/transport-node';
import { HEAP_PROFILE_ENV, topSelfSizes } from './lib/heap-profile.js';
import { forkResponder, pinApart, RAW_JS, type ResponderProcess } from './responder-process.js';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const QUICK = args.has('quick');
const PAYLOAD = Number(args.get('payload') ?? 256);
const INFLIGHT = Number(args.get('inflight') ?? 64);
const PIPELINED = Number(args.get('messages') ?? (QUICK ? 2000 : 20_000));
const DURABLE_PIPELINED = Number(args.get('durable-messages') ?? (QUICK ? 1000 : 5000));
const SERIAL = Number(args.get('serial') ?? (QUICK ? 400 : 2000));
const ROUNDS = Number(args.get('rounds') ?? (QUICK ? 1 : 5));
const MODES = (args.get('modes') ?? 'raw,raw_envelope,fast,fast_otel,durable,raw_jetstream').split(',');
const FAST_PATH = args.get('nats-fast-path') ?? (QUICK ? 'on' : 'both');
/** Where --heap-profile writes the responder's sampling heap profile (see bench/lib/heap-sampler.ts). */
const HEAP_PROFILE = args.has('heap-profile') ? `/tmp/prof/responder-${FAST_PATH}.heapprofile` : undefined;
const HEAP_SAMPLER = fileURLToPath(new URL('./lib/heap-sampler.ts', import.meta.url));
/** Modes that go through a JetStream stream, and send fewer messages. */
const STREAMED = new Set(['durable', 'raw_jetstream']);

if (FAST_PATH === 'both') {
  const rest = process.argv.slice(2).filter((a) => !a.startsWith('--nats-fast-path'));
  for (const setting of ['on', 'off']) {
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        '@stitch/typescript-loader',
        fileURLToPath(import.meta.url),
        ...rest,
        `--nats-fast-path=${setting}`,
      ],
      { stdio: 'inherit' },
    );
    if (run.status !== 0) process.exit(run.status ?? 1);
  }
  process.exit(0);
}
if (FAST_PATH !== 'on' && FAST_PATH !== 'off') {
  process.stderr.write('--nats-fast-path must be both, on or off\n');
  process.exit(2);
}
// Read by @stitch/runtime when it loads (imported dynamically below) and inherited by the responder.
process.env.STITCH_NATS_FAST_PATH = FAST_PATH === 'on' ? '1' : '0';
const { connectCluster, startEmbeddedNats } = await import('@stitch/runtime');
const { encode, envelopeHeaders, newTraceparent } = await import('@stitch/runtime/internal');
const OTEL_MODES = ['fast_otel', 'fast_otel_sdk'];
const OTEL = OTEL_MODES.some((m) => MODES.includes(m));
/** The share of traces fast_otel samples. */
const OTEL_RATIO = Number(args.get('otel-ratio') ?? 0.01);
/**
 * Sampled messages fast_otel sends before its rounds (--otel-warm-up). Every other path runs on every
 * message and is compiled after a few hundred; the sampled one (SDK spans, their export) runs on 1 %,
 * and V8 optimises it only after a few thousand runs: measured with 200 (20 000 messages) fast_otel ran
 * at 0.79–0.85× fast, with 2 000 at 0.88–0.96× — a young process's cost against a running service's.
 * Steady state is what a service pays, so the rounds measure it; --otel-warm-up=200 shows the other.
 */
const OTEL_WARM_UP = Number(args.get('otel-warm-up') ?? (QUICK ? 200 : 2000));
/** Messages sent before a mode's rounds (JIT, connections, consumer). */
const warmUp = (mode: string) =>
  OTEL_MODES.includes(mode) ? Math.round(OTEL_WARM_UP / Math.max(OTEL_RATIO, 0.01)) : 500;

/**
 * For fast_otel: a local OTLP endpoint that drops what it gets, 1 % sampling (read by both processes),
 * telemetry started here, and the module the responder preloads to start its own. It turns the
 * runtime's spans on and off when the bench says `otel:on` / `otel:off`, and on through the SDK's spans
 * (no span recorder) for `otel:sdk`.
 */
async function startBenchTelemetry(): Promise<{ preload: string; stop(): Promise<void> }> {
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
  process.env.OTEL_TRACES_SAMPLER = 'parentbased_traceidratio';
  process.env.OTEL_TRACES_SAMPLER_ARG = String(OTEL_RATIO);
  const { startTelemetry } = await import('@stitch/telemetry');
  const telemetry = await startTelemetry({ serviceName: 'bench' });
  const dist = (p: string) => pathToFileURL(fileURLToPath(new URL(`../packages/${p}`, import.meta.url))).href;
  const preload = [
    `import { startTelemetry } from '${dist('telemetry/dist/index.js')}';`,
    `import { setSpanRecorder, setTracingEnabled } from '${dist('runtime/dist/index.js')}';`,
    `import { spanRecorder } from '${dist('runtime/dist/internal.js')}';`,
    `await startTelemetry({ serviceName: 'bench-responder' });`,
    'const own = spanRecorder();',
    `process.on('message', (m) => { if (typeof m !== 'string' || !m.startsWith('otel:')) return; setSpanRecorder(m === 'otel:sdk' ? undefined : own); setTracingEnabled(m !== 'otel:off'); });`,
  ].join('\n');
  return {
    preload: `data:text/javascript,${encodeURIComponent(preload)}`,
    async stop() {
      await telemetry.shutdown();
      await new Promise((resolve) => sink.close(resolve));
    },
  };
}

type Send = () => Promise<unknown>;
interface Run {
  msgsPerS: number;
  p50: number;
  p99: number;
  /** CPU time per message, µs, of the bench process, the responder and nats-server. */
  cpu: { bench: number; responder: number; server: number };
}

/** CPU seconds used so far by the bench process, the responder and nats-server. */
async function cpuNow(): Promise<{ bench: number; responder: number; server: number }> {
  const own = process.cpuUsage();
  const child = responder!.child;
  const responderUs = await new Promise<number>((resolve) => {
    child.once('message', (m) => resolve(Number(m)));
    child.send('cpu');
  });
  // utime + stime of the server, in clock ticks (100 per second on Linux).
  const stat = readFileSync(`/proc/${nats.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return {
    bench: (own.user + own.system) / 1e6,
    responder: responderUs / 1e6,
    server: (Number(stat[11]) + Number(stat[12])) / 100,
  };
}

/** Sends `total` messages keeping `inflight` outstanding; latency of each in µs. */
async function drive(send: Send, total: number, inflight: number): Promise<Run> {
  const cpu0 = await cpuNow();
  const lat = new Float64Array(total);
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      await send();
      lat[i] = (performance.now() - t0) * 1000;
    }
  };
  await Promise.all(Array.from({ length: Math.min(inflight, total) }, lane));
  const seconds = (performance.now() - started) / 1000;
  lat.sort();
  const q = (p: number) => lat[Math.min(total - 1, Math.floor(p * total))]!;
  const cpu1 = await cpuNow();
  const perMsg = (k: keyof typeof cpu0) => ((cpu1[k] - cpu0[k]) * 1e6) / total;
  const cpu = { bench: perMsg('bench'), responder: perMsg('responder'), server: perMsg('server') };
  return { msgsPerS: total / seconds, p50: q(0.5), p99: q(0.99), cpu };
}

/**
 * Correlation ids ride on the reply subject of one wildcard inbox subscription, as stitch does;
 * `next()` gives a fresh reply subject and the promise of its reply.
 */
function replyInbox(nc: NatsConnection): () => { reply: string; replied: Promise<void> } {
  const inbox = createInbox();
  const pending = new Map<string, () => void>();
  nc.subscribe(`${inbox}.*`, {
    callback: (err, m) => {
      if (err) return;
      const id = m.subject.slice(inbox.length + 1);
      pending.get(id)?.();
      pending.delete(id);
    },
  });
  let seq = 0;
  return () => {
    const id = (seq++).toString(36);
    const replied = new Promise<void>((resolve) => pending.set(id, resolve));
    return { reply: `${inbox}.${id}`, replied };
  };
}

function rawSender(nc: NatsConnection, body: Uint8Array, envelope = false): Send {
  const next = replyInbox(nc);
  return () => {
    const { reply, replied } = next();
    const h = envelope
      ? envelopeHeaders({ traceparent: newTraceparent(), sender: 'bench', deadline: Date.now() + 5000 })
      : undefined;
    nc.publish('bench.raw.echo', body, { reply, ...(h ? { headers: h } : {}) });
    return replied;
  };
}

/** Publishes to the work-queue stream and waits for both the stream's ack and the responder's reply. */
function rawJetStreamSender(nc: NatsConnection, body: Uint8Array): Send {
  const js = jetstream(nc);
  const next = replyInbox(nc);
  return () => {
    const { reply, replied } = next();
    const h = headers();
    h.set(RAW_JS.replyHeader, reply);
    return Promise.all([js.publish(RAW_JS.subject, body, { headers: h }), replied]);
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const nats = await startEmbeddedNats();
const otel = OTEL ? await startBenchTelemetry() : undefined;
let responder: ResponderProcess | undefined;
const { setSpanRecorder, setTracingEnabled } = await import('@stitch/runtime');
const { spanRecorder } = await import('@stitch/runtime/internal');
/** The runtime's own span recorder, which fast_otel_sdk turns off to make SDK spans instead. */
const ownRecorder = spanRecorder();
/**
 * Spans on in both processes for the fast_otel modes, off for every other mode (IPC is ordered: on
 * before the run).
 */
const spansFor = (mode: string) => {
  if (!otel) return;
  const on = OTEL_MODES.includes(mode);
  setSpanRecorder(mode === 'fast_otel_sdk' ? undefined : ownRecorder);
  setTracingEnabled(on);
  responder!.child.send(mode === 'fast_otel_sdk' ? 'otel:sdk' : on ? 'otel:on' : 'otel:off');
};
try {
  if (HEAP_PROFILE) mkdirSync(dirname(HEAP_PROFILE), { recursive: true });
  responder = await forkResponder(
    nats.url,
    [
      ...(args.has('profile') ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []),
      ...(HEAP_PROFILE ? ['--import', HEAP_SAMPLER] : []),
      ...(otel ? ['--import', otel.preload] : []),
    ],
    HEAP_PROFILE ? { [HEAP_PROFILE_ENV]: HEAP_PROFILE } : {},
  );
  const pinned = args.has('no-pin') ? 'off' : pinApart(responder);
  const raw = await connect({ servers: nats.url });
  const cluster = await connectCluster({ nats: nats.url, name: 'bench' });
  const data = new Uint8Array(PAYLOAD).fill(7);
  const ref = cluster.ref({ type: 'bench-echo', id: 'e1' });
  const msg = { type: 'echo', data };
  // Raw sends the same bytes the actor message encodes to, so all modes move the same payload.
  const all: Record<string, Send> = {
    raw: rawSender(raw, encode(msg)),
    // Diagnostic: raw plus the stitch envelope headers, to separate header cost from runtime cost.
    raw_envelope: rawSender(raw, encode(msg), true),
    fast: () => ref.ask(msg as never),
    fast_otel: () => ref.ask(msg as never),
    fast_otel_sdk: () => ref.ask(msg as never),
    durable: () => ref.ask(msg as never, { mode: 'durable' }),
    raw_jetstream: rawJetStreamSender(raw, encode(msg)),
  };
  const senders = Object.fromEntries(Object.entries(all).filter(([m]) => MODES.includes(m)));
  const results: Record<string, { pipelined: Run[]; serial: Run[] }> = {};
  for (const mode of Object.keys(senders)) {
    results[mode] = { pipelined: [], serial: [] };
    spansFor(mode);
    await drive(senders[mode]!, warmUp(mode), INFLIGHT);
  }
  for (let round = 0; round < ROUNDS; round++) {
    // Every other round in reverse: a mode's place in the round (what ran just before it, the
    // collector's debts) would otherwise favour some modes in every round alike.
    const order = round % 2 === 0 ? Object.entries(senders) : Object.entries(senders).reverse();
    for (const [mode, send] of order) {
      spansFor(mode);
      const streamed = STREAMED.has(mode);
      results[mode]!.pipelined.push(await drive(send, streamed ? DURABLE_PIPELINED : PIPELINED, INFLIGHT));
      results[mode]!.serial.push(await drive(send, streamed ? SERIAL / 4 : SERIAL, 1));
    }
  }
  const summary = (runs: Run[]) => ({
    msgs_per_s: Math.round(median(runs.map((r) => r.msgsPerS))),
    p50_us: Math.round(median(runs.map((r) => r.p50))),
    p99_us: Math.round(median(runs.map((r) => r.p99))),
    cpu_us_per_msg: {
      bench: +median(runs.map((r) => r.cpu.bench)).toFixed(1),
      responder: +median(runs.map((r) => r.cpu.responder)).toFixed(1),
      server: +median(runs.map((r) => r.cpu.server)).toFixed(1),
    },
  });
  const base = { payload_bytes: encode(msg).length, rounds: ROUNDS, pinned, nats_fast_path: FAST_PATH };
  const sums = Object.fromEntries(
    Object.entries(results).map(([m, r]) => [m, { p: summary(r.pipelined), s: summary(r.serial) }]),
  );
  /** `{ [name]: value / the reference's value }`, or nothing when the reference mode did not run. */
  const ratio = (name: string, ref: string, value: number, refValue: (r: (typeof sums)[string]) => number) =>
    sums[ref] ? { [name]: +(value / refValue(sums[ref])).toFixed(3) } : {};
  for (const mode of Object.keys(senders)) {
    const { p, s } = sums[mode]!;
    // Every mode is compared with raw core NATS; durable mode also with a raw JetStream round trip.
    const js = mode === 'durable' ? 'raw_jetstream' : '';
    // fast_otel is also compared with fast: what telemetry that is on costs.
    const fast = OTEL_MODES.includes(mode) ? 'fast' : '';
    const lines = [
      {
        bench: 'actors.pipelined',
        mode,
        inflight: INFLIGHT,
        ...p,
        ...ratio('ratio_msgs_per_s_vs_raw', 'raw', p.msgs_per_s, (r) => r.p.msgs_per_s),
        ...ratio('ratio_msgs_per_s_vs_raw_jetstream', js, p.msgs_per_s, (r) => r.p.msgs_per_s),
        ...ratio('ratio_msgs_per_s_vs_fast', fast, p.msgs_per_s, (r) => r.p.msgs_per_s),
      },
      {
        bench: 'actors.serial',
        mode,
        inflight: 1,
        ...s,
        ...ratio('ratio_p50_vs_raw', 'raw', s.p50_us, (r) => r.s.p50_us),
        ...ratio('ratio_p50_vs_raw_jetstream', js, s.p50_us, (r) => r.s.p50_us),
        ...ratio('ratio_p50_vs_fast', fast, s.p50_us, (r) => r.s.p50_us),
      },
    ];
    const otel = OTEL_MODES.includes(mode)
      ? { otel_ratio: OTEL_RATIO, otel_warm_up_sampled: OTEL_WARM_UP }
      : {};
    for (const line of lines) process.stdout.write(`${JSON.stringify({ ...line, ...otel, ...base })}\n`);
  }
  await cluster.close();
  await raw.close();
} finally {
  await responder?.stop();
  await otel?.stop();
  await nats.stop();
}
if (HEAP_PROFILE) {
  const profile = JSON.parse(readFileSync(HEAP_PROFILE, 'utf8'));
  const line = {
    bench: 'actors.heap_profile',
    modes: MODES,
    file: HEAP_PROFILE,
    top: topSelfSizes(profile.head, 25),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
