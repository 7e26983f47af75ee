// The worker service: a stitch node hosting the cart actors, until SIGTERM/SIGINT (then it drains and
// leaves). STITCH_NATS (URLs, comma-separated), STITCH_CLUSTER, STITCH_NKEY (this node's seed from
// `stitch cluster init --auth DIR --nodes WORKER_ID`), WORKER_ID.
import { Cart } from '@orders/actors';
import { connectCluster } from '@stitch/runtime';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const cluster = await connectCluster({
  nats: env('STITCH_NATS'),
  name: env('STITCH_CLUSTER'),
  nkeySeedFile: env('STITCH_NKEY'),
});
const node = await cluster.startNode({ id: env('WORKER_ID'), actors: [Cart] });
console.log(`worker ${node.id} hosts ${Cart.type} in cluster "${cluster.name}"`);

const stop = async () => {
  await cluster.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
