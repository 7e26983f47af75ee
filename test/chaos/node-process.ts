// A stitch node for the chaos hosts: joins the cluster at the URLs in its JSON argument, hosts Account
// (and, with `operators`, the agent operators a coordinator places), prints `ready <node id> wire
// <version>`, the wire protocol of the runtime build it runs (`runtime`: another build's entry). SIGTERM
// drains it first (`draining`, then `drained <actors left>`: a coordinator moves its operators off it
// live), then closes it.
import { Account } from './account.js';

export interface NodeConfig {
  urls: string[];
  cluster: string;
  nodeId: string;
  deadAfterMs: number;
  /** Host the agent operators too, so that a coordinator can place a graph here. */
  operators?: boolean;
  /** file: URL of the runtime build to run (next-build.ts); the workspace's by default. */
  runtime?: string;
  nkeySeedFile?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as NodeConfig;
const entry = config.runtime ?? import.meta.resolve('@stitch/runtime');
const { connectCluster } = (await import(entry)) as typeof import('@stitch/runtime');
const { WIRE_VERSION } = (await import(
  new URL('./internal.js', entry).href
)) as typeof import('@stitch/runtime/internal');
const cluster = await connectCluster({
  nats: config.urls,
  name: config.cluster,
  deadAfterMs: config.deadAfterMs,
  waitForServerMs: 10_000,
  ...(config.nkeySeedFile ? { nkeySeedFile: config.nkeySeedFile } : {}),
});
const node = await cluster.startNode({
  id: config.nodeId,
  // Imported only where needed: the agents package is much more to load than Account.
  actors: config.operators ? [Account, ...(await import('@stitch/agents')).OPERATOR_ACTORS] : [Account],
});
const say = (line: string) => process.stdout.write(`${line}\n`);
const drainAndStop = async () => {
  say('draining');
  say(`drained ${await node.drain()}`);
  await cluster.close();
  process.exit(0);
};
process.once('SIGTERM', drainAndStop);
process.once('SIGINT', drainAndStop);
say(`ready ${node.id} wire ${WIRE_VERSION}`);
