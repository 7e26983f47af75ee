// The responding process of bench/actors: a raw nats.js echo subscriber and a node hosting an echo actor.
import { connect } from '@nats-io/transport-node';
import { connectCluster, defineActor } from '@stitch/runtime';

export const BenchEcho = defineActor({
  type: 'bench-echo',
  handlers: { echo: (_s: unknown, m: { data: Uint8Array }) => m.data },
  // Room for every message the bench keeps in flight.
  mailbox: { capacity: 4096, perCaller: 4096 },
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
const cluster = await connectCluster({ nats: url, name: 'bench' });
await cluster.startNode({ actors: [BenchEcho] });
await cluster.spawn(BenchEcho, { id: 'e1' });
process.once('SIGTERM', async () => {
  await cluster.close();
  await raw.close();
  process.exit(0);
});
// The bench asks for this process's CPU time (µs) around each run.
process.on('message', (m) => {
  if (m !== 'cpu') return;
  const u = process.cpuUsage();
  process.send?.(u.user + u.system);
});
process.send?.('ready');
