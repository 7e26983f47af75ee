// A coordinator for the chaos hosts: joins the cluster at the URLs in its JSON argument and runs a
// Coordinator (leader lease `leaseMs`). With `deploy`, it waits until it leads and deploys that graph.
// Every log line goes to stdout prefixed with the epoch ms it was written at, so that the scenario can
// time a take-over on the one clock all hosts share. Prints `ready` once started; SIGTERM stops it.
import { readFileSync } from 'node:fs';
import { Coordinator, closeMemoryConnections } from '@stitch/agents';
import { connectCluster } from '@stitch/runtime';

export interface CoordinatorConfig {
  urls: string[];
  cluster: string;
  name: string;
  leaseMs: number;
  /** An MLIR graph file to deploy once this coordinator leads. */
  deploy?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as CoordinatorConfig;
const say = (line: string) => process.stdout.write(`${Date.now()} ${line}\n`);
const cluster = await connectCluster({
  nats: config.urls,
  name: config.cluster,
  waitForServerMs: 10_000,
  log: () => undefined,
});
// Drift re-plans off: the only moves are the ones the fault causes.
const coordinator = new Coordinator(cluster, {
  name: config.name,
  leaseMs: config.leaseMs,
  driftEvery: Number.MAX_SAFE_INTEGER,
  log: say,
});
await coordinator.start();
if (config.deploy) {
  const d = await coordinator.deploy(readFileSync(config.deploy, 'utf8'));
  say(`deployed ${d.name}: ${d.ops.map((o) => `${o.id}@${o.node}`).join(' ')}`);
}
const stop = async () => {
  await coordinator.stop();
  await closeMemoryConnections();
  await cluster.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
say(`ready ${config.name}`);
