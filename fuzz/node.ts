// The node process the fuzzer attacks: joins the cluster named in its JSON argument, hosts the test
// fixtures' Counter and a coordinator (its actor takes deployments; it watches membership), reports
// `{ ready: nodeId }` over IPC, and closes cleanly on SIGTERM.
import { Coordinator, coordinatorActor } from '@stitch/agents';
import { connectCluster, type LogFn } from '@stitch/runtime';
import { Counter } from '../test/fixtures/runtime-actors.js';
import type { NodeProcConfig } from './procs.js';

const config = JSON.parse(process.argv[2] ?? '{}') as NodeProcConfig;
// Hostile input is logged by the runtime (at most once a second per edge); `--verbose` shows it.
const log: LogFn = (level, message, fields) => {
  if (config.verbose) process.stderr.write(`${JSON.stringify({ level, message, fields })}\n`);
};
const cluster = await connectCluster({ nats: config.nats, name: config.cluster, log });
const coordinator = new Coordinator(cluster, {
  log: (line) => {
    if (config.verbose) process.stderr.write(`${line}\n`);
  },
});
await coordinator.start();
const coordinatorDef = coordinatorActor(coordinator);
const node = await cluster.startNode({ id: config.nodeId, actors: [Counter, coordinatorDef] });
await cluster.spawn(coordinatorDef, { id: config.coordinatorId });
const stop = async () => {
  await coordinator.stop();
  await cluster.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.send?.({ ready: node.id });
// The fuzzer asks for the process's memory figures after each target (heap vs. buffers outside it).
process.on('message', (m) => {
  if (m === 'memory') process.send?.({ memory: process.memoryUsage() });
});
