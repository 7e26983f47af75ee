// The load generator of bench/spike, in its own process so that the coordinator's event loop (in the
// parent) is measured alone. Reads { nats, cluster, deployment, request, times } (arrival seconds) as JSON on
// stdin; follows the deployment's record with watchDeployment (replicas the coordinator adds reach
// the next ask); prints `{"started":true}` at its clock's zero, one JSON line per finished request
// ({ i, startS, ms, ok, refused }), then `{"done":true,...}`.
import { text } from 'node:stream/consumers';
import { type AgentRequest, GraphRunner, watchDeployment } from '../packages/agents/dist/index.js';
import { connectCluster } from '../packages/runtime/dist/index.js';

const input = JSON.parse(await text(process.stdin)) as {
  nats: string;
  cluster: string;
  deployment: string;
  request: AgentRequest;
  times: number[];
};
const cluster = await connectCluster({ nats: input.nats, name: input.cluster });
const watch = await watchDeployment(cluster, input.deployment);
const runner = new GraphRunner(cluster, { timeoutMs: 120_000 });
const say = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
say({ started: true });
const t0 = performance.now();
const pending: Promise<void>[] = [];
for (const [i, at] of input.times.entries()) {
  const wait = at * 1000 - (performance.now() - t0);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const startS = (performance.now() - t0) / 1000;
  pending.push(
    runner.run(watch.current, `r${i}`, input.request).then(
      (r) => void say({ i, startS, ms: r.latencyMs, ok: true, refused: false }),
      (err) =>
        void say({
          i,
          startS,
          ms: null,
          ok: false,
          refused: (err as { cause?: { code?: string } }).cause?.code === 'ACTOR_OVERLOADED',
        }),
    ),
  );
}
await Promise.all(pending);
say({ done: true, ignoredRecords: watch.ignored });
watch.close();
await cluster.close();
