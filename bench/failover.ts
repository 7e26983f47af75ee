// bench/failover: the tool agent deployed by a leader coordinator (its own process) on two in-process
// nodes of an embedded nats-server, a standby coordinator in this process, requests running two at a
// time. After a third of them a cheaper accelerator (gaudi3) joins, the leader starts moving the LLM
// ops to it live, and as soon as the first move commits the leader is killed with SIGKILL. Per round:
// how long until the standby leads (takeover_ms, by this process's clock from the kill), requests that
// failed, whether moves were in flight at the kill and whether the standby completed them (every LLM
// op on gaudi3 and configured for it), and per operator the effects applied vs requests answered
// (lost: answered but not applied; duplicated: applied twice).
// Usage: pnpm bench failover [--rounds 3] [--requests 60] [--lease-ms 2000] [--quick]
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type AgentRequest,
  allowOperatorNatsUrls,
  Coordinator,
  closeMemoryConnections,
  GraphRunner,
  loadDeployment,
  OPERATOR_ACTORS,
} from '../packages/agents/dist/index.js';
import { type Cluster, connectCluster, startEmbeddedNats } from '../packages/runtime/dist/index.js';

const quick = process.argv.includes('--quick');
// Each round starts its own nats-server in this one process: operators here may use each of them.
allowOperatorNatsUrls('any');
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const rounds = arg('rounds', quick ? 1 : 3);
const requests = arg('requests', quick ? 12 : 60);
const leaseMs = arg('lease-ms', 2000);
const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const SAMPLE = fileURLToPath(new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url));
const request: AgentRequest = { query: 'what is 6*7?', expr: '6*7', search: 'kv cache' };

function leaderProcess(nats: string, cluster: string): { child: ChildProcess; deployed: Promise<number> } {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'coordinator',
      '--nats',
      nats,
      '--name',
      cluster,
      '--id',
      'a',
      '--lease-ms',
      String(leaseMs),
      '--deploy',
      SAMPLE,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const deployed = new Promise<number>((resolve, reject) => {
    const on = (b: Buffer) => {
      out += b.toString();
      const epoch = /leading the cluster's coordinators \(epoch (\d+)\)/.exec(out)?.[1];
      if (epoch && /deployed tool_agent/.test(out)) resolve(Number(epoch));
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => reject(new Error(`leader coordinator exited (${code}): ${out}`)));
  });
  return { child, deployed };
}

async function round(n: number) {
  const nats = await startEmbeddedNats();
  const name = `failover${n}`;
  const clusters: Cluster[] = [];
  const log = () => undefined;
  let leader: ChildProcess | undefined;
  let standby: Coordinator | undefined;
  try {
    for (const [id, virtual] of [
      ['node-cpu', []],
      ['node-h100', ['h100']],
    ] as const) {
      const c = await connectCluster({ nats: nats.url, name, log });
      await c.startNode({ id, actors: OPERATOR_ACTORS, virtual: [...virtual] });
      clusters.push(c);
    }
    const client = await connectCluster({ nats: nats.url, name, log });
    clusters.push(client);
    const started = leaderProcess(nats.url, name);
    leader = started.child;
    const epochBefore = await started.deployed;
    standby = new Coordinator(client, { name: 'b', leaseMs, driftEvery: 1_000_000 });
    await standby.start();
    const d = (await loadDeployment(client, 'tool_agent'))!;
    const runner = new GraphRunner(client, { mode: 'fast' });
    let next = 0;
    let ok = 0;
    let failed = 0;
    let killedAt = 0;
    let ledAt = 0;
    let killing: Promise<void> | undefined;
    const llm = d.ops.filter((o) => o.classId === 'h100');
    const onGaudi = async () =>
      (await Promise.all(llm.map((o) => client.locate({ type: o.actorType, id: o.actorId })))).filter(
        (w) => w?.node === 'node-gaudi3',
      ).length;
    let movedBeforeKill = 0;
    // A cheaper accelerator joins: the leader re-plans and moves the LLM ops to it live. As soon as
    // the first move commits, the leader is killed, the others still in flight.
    const killMidMigration = async () => {
      const c = await connectCluster({ nats: nats.url, name, log });
      clusters.push(c);
      await c.startNode({ id: 'node-gaudi3', actors: OPERATOR_ACTORS, virtual: ['gaudi3'] });
      const until = performance.now() + 20_000;
      movedBeforeKill = await onGaudi();
      while (movedBeforeKill === 0 && performance.now() < until) {
        await new Promise((r) => setTimeout(r, 1));
        movedBeforeKill = await onGaudi();
      }
      leader!.kill('SIGKILL');
      killedAt = performance.now();
    };
    const s = standby;
    const watch = (async () => {
      while (!killedAt) await new Promise((r) => setTimeout(r, 5));
      while (!s.leading) await new Promise((r) => setTimeout(r, 2));
      ledAt = performance.now();
    })();
    const worker = async () => {
      while (next < requests) {
        const rid = `q${next++}`;
        try {
          await runner.run(d, rid, request);
          ok++;
        } catch {
          failed++;
        }
        if (ok + failed === Math.floor(requests / 3) && !killing) killing = killMidMigration();
      }
    };
    await Promise.all([worker(), worker()]);
    await killing;
    await watch;
    // The standby finishes the move: every LLM op ends on the new accelerator, configured for it.
    const devicesNow = () =>
      Promise.all(
        llm.map(async (o) => {
          const c = await client
            .ref({ type: o.actorType, id: o.actorId })
            .ask({ type: 'counts' }, { retries: 3 });
          return (c as { config?: { device?: string } }).config?.device;
        }),
      );
    const until = performance.now() + 20_000;
    let movedAfter = await onGaudi();
    let devices = await devicesNow();
    while ((movedAfter < llm.length || devices.some((x) => x !== 'gaudi3')) && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      movedAfter = await onGaudi();
      devices = await devicesNow();
    }
    const applied = await Promise.all(
      d.ops.map(async (o) => {
        const c = await client
          .ref({ type: o.actorType, id: o.actorId })
          .ask({ type: 'counts' }, { retries: 3 });
        return (c as { applied: number }).applied;
      }),
    );
    return {
      bench: 'failover',
      round: n,
      lease_ms: leaseMs,
      requests,
      requests_failed: failed,
      takeover_ms: Math.round(ledAt - killedAt),
      epoch_before: epochBefore,
      epoch_after: standby.epoch,
      lost: applied.reduce((sum, a) => sum + Math.max(0, ok - a), 0),
      duplicated: applied.reduce((sum, a) => sum + Math.max(0, a - ok), 0),
      llm_ops: llm.length,
      moved_before_kill: movedBeforeKill,
      // In flight: the leader died with some of the moves it started not yet committed.
      migration_in_flight: movedBeforeKill > 0 && movedBeforeKill < llm.length,
      moved_after_takeover: movedAfter,
      migration_completed: movedAfter === llm.length && devices.every((x) => x === 'gaudi3'),
    };
  } finally {
    if (leader && leader.exitCode === null && leader.signalCode === null) leader.kill('SIGKILL');
    await standby?.stop();
    await closeMemoryConnections();
    for (const c of clusters) await c.close().catch(() => undefined);
    await nats.stop();
  }
}

for (let n = 0; n < rounds; n++) process.stdout.write(`${JSON.stringify(await round(n))}\n`);
