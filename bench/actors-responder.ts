// The responding process of bench/actors: a raw nats.js echo subscriber, a raw JetStream work-queue
// echo (pull consumer, reply on core NATS, then ack) and a node hosting an echo actor.
import { AckPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { connectCluster, defineActor } from '@stitch/runtime';
import { RAW_JS } from './responder-process.js';

/** Room for every message the bench keeps in flight. */
const CAPACITY = 4096;

export const BenchEcho = defineActor({
  type: 'bench-echo',
  handlers: { echo: (_s: unknown, m: { data: Uint8Array }) => m.data },
  mailbox: { capacity: CAPACITY, perCaller: CAPACITY },
  durable: { ackWaitMs: 10_000 },
});

const url = process.argv[2]!;
const raw = await connect({ servers: url });
raw.subscribe('bench.raw.echo', {
  callback: (err, m) => {
    if (!err && m.reply) raw.publish(m.reply, m.data);
  },
});
await raw.flush();

// The same stream and consumer settings as an actor's durable mailbox (cluster/setup.ts,
// actor/durable-inbox.ts), so the two differ only in what stitch does around them.
const jsm = await jetstreamManager(raw);
await jsm.streams.add({
  name: RAW_JS.stream,
  subjects: [RAW_JS.subject],
  retention: RetentionPolicy.Workqueue,
  duplicate_window: nanos(120_000),
  max_bytes: 1024 ** 3,
  max_age: nanos(7 * 24 * 3600 * 1000),
  discard: DiscardPolicy.New,
});
await jsm.consumers.add(RAW_JS.stream, {
  durable_name: 'echo',
  ack_policy: AckPolicy.Explicit,
  ack_wait: nanos(10_000),
  max_ack_pending: CAPACITY / 2,
});
const consumer = await jetstream(raw).consumers.get(RAW_JS.stream, 'echo');
const jsMessages = await consumer.consume({ max_messages: 256 });
void (async () => {
  for await (const m of jsMessages) {
    const reply = m.headers?.get(RAW_JS.replyHeader);
    if (reply) raw.publish(reply, m.data);
    m.ack();
  }
})();

const cluster = await connectCluster({ nats: url, name: 'bench' });
await cluster.startNode({ actors: [BenchEcho] });
await cluster.spawn(BenchEcho, { id: 'e1' });
const stop = async () => {
  await jsMessages.close();
  await cluster.close();
  await raw.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
// The bench that forked this process is gone (it crashed, or was killed): so is this one.
process.once('disconnect', stop);
// The bench asks for this process's CPU time (µs) around each run.
process.on('message', (m) => {
  if (m !== 'cpu') return;
  const u = process.cpuUsage();
  process.send?.(u.user + u.system);
});
process.send?.('ready');
