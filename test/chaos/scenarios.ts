// The faults of `pnpm chaos`, in the order they run.
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { loadDeployment } from '@stitch/agents';
import { type Cluster, connectCluster } from '@stitch/runtime';
import { WIRE_VERSION } from '../../packages/runtime/src/wire/version.js';
import type { HostProcess } from '../fixtures/hosts/netns.js';
import { Account } from './account.js';
import { makeNextBuild } from './next-build.js';
import { type Scenario, type World, waitForLine } from './scenario.js';

/** The server leading the mailbox stream (where losing a server hurts most); h1 when none answers. */
async function mailboxLeader(w: World): Promise<string> {
  const nc = await connect({ servers: w.nats.urls() });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const s of jsm.streams.list())
      if (s.config.name.endsWith('_mailbox') && s.cluster?.leader) return s.cluster.leader;
    return 'h1';
  } catch {
    // JetStream electing after an earlier fault: any server will do for this one.
    return 'h1';
  } finally {
    await nc.close();
  }
}

let stopped = 'h1';

/** Accounts the load client uses (run.ts's shape.actors at most). */
const ACCOUNTS = 8;

/**
 * Live-migrates every account n1 hosts to n2 at once and kills n1 (SIGKILL) as soon as the first move
 * has committed: the rest die mid-hand-off with their source. No effect may be lost or applied twice.
 */
async function killDuringMigrations(w: World): Promise<void> {
  const c = await connectCluster({ nats: w.nats.urls(), name: w.cluster, log: () => undefined });
  try {
    const refs = Array.from({ length: ACCOUNTS }, (_, i) =>
      c.ref<typeof Account>({ type: Account.type, id: `acct-${i}` }),
    );
    const onN1 = [];
    for (const ref of refs) if ((await c.locate(ref))?.node === 'n1') onN1.push(ref);
    const moves = onN1.map((ref) =>
      c.migrate(ref, 'n2', { timeoutMs: 5000 }).then(
        () => true,
        () => false,
      ),
    );
    // Killed as soon as the first move has committed: the others are still on their way.
    await Promise.race([
      Promise.race(moves.map((m) => m.then((ok) => (ok ? true : new Promise(() => {}))))),
      delay(3000),
    ]);
    const n1 = w.nodes.get('n1')!;
    n1.child.kill('SIGKILL');
    await n1.exited;
    const done = await Promise.all(moves);
    const committed = done.filter(Boolean).length;
    process.stderr.write(
      `migration-kill: ${onN1.length} accounts on n1, ${committed} moved before the kill, ${onN1.length - committed} died with it\n`,
    );
  } finally {
    await c.close();
  }
}

/** The graph the coordinators manage in leader-kill. */
const GRAPH = fileURLToPath(new URL('../../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url));
const GRAPH_NAME = 'tool_agent';
/** Short, so that the standby takes over within about a second. */
const LEASE_MS = 1000;
/** How long the standby has to move every operator off the drained node (its drain gives up after 10 s). */
const DRAIN_JOB_MS = 15_000;

/** The lines of `p` written at or after `after` (epoch ms; each line starts with its time). */
function linesSince(p: HostProcess, after: number): { at: number; line: string }[] {
  return p
    .output()
    .stdout.split('\n')
    .map((line) => ({ at: Number(line.slice(0, line.indexOf(' '))), line }))
    .filter((l) => l.at >= after);
}

/** Occurrences of `text` in `lines`. */
const countIn = (lines: { line: string }[], text: string) =>
  lines.reduce((n, l) => n + l.line.split(text).length - 1, 0);

/** Operators of the graph's deployment record that run on `nodeId` (primary or replica). */
async function operatorsOn(w: World, nodeId: string): Promise<number> {
  const c = await connectCluster({ nats: w.nats.urls(), name: w.cluster, log: () => undefined });
  try {
    const d = await loadDeployment(c, GRAPH_NAME);
    if (!d) throw new Error(`no deployment record ${GRAPH_NAME}`);
    return d.ops.filter((o) => o.node === nodeId || o.replicas?.some((r) => r.node === nodeId)).length;
  } finally {
    await c.close();
  }
}

/**
 * Node n1 is drained (SIGTERM: its operators are to move off it live) and the leading coordinator is
 * killed (SIGKILL) as soon as the drain has begun, with its moves in flight or not yet started. The
 * standby must take over and finish the job: no operator of the graph left on n1.
 */
async function killLeaderDuringDrain(w: World): Promise<void> {
  const leader = w.coordinators.get('c1')!;
  const standby = w.coordinators.get('c2')!;
  const n1 = w.nodes.get('n1')!;
  w.report.operators_on_n1_before = await operatorsOn(w, 'n1');
  n1.child.kill('SIGTERM');
  await waitForLine(n1, 'draining', 'node n1', 5000);
  const killedAt = Date.now();
  leader.child.kill('SIGKILL');
  await leader.exited;
  const leading = "leading the cluster's coordinators";
  await waitForLine(standby, leading, 'standby coordinator', 10 * LEASE_MS);
  w.report.takeover_ms = linesSince(standby, killedAt).find((l) => l.line.includes(leading))!.at - killedAt;
  // The job is done once the deployment record has nothing on n1 (checked every 200 ms).
  const end = Date.now() + DRAIN_JOB_MS;
  let left = await operatorsOn(w, 'n1');
  while (left > 0 && Date.now() < end) {
    await delay(200);
    left = await operatorsOn(w, 'n1');
  }
  w.report.operators_on_n1_after = left;
  w.report.drain_job_ms = Date.now() - killedAt;
  // How the standby moved them (its log of each migration: live hand-off, or restart from state).
  const moves = linesSince(standby, killedAt);
  w.report.standby_moves_live = countIn(moves, '(live: copy');
  w.report.standby_moves_restart = countIn(moves, '(restart: stop');
}

/** Where each account runs now, counted by node. */
async function accountsByNode(c: Cluster): Promise<Record<string, number>> {
  const by: Record<string, number> = {};
  for (let i = 0; i < ACCOUNTS; i++) {
    const node = (await c.locate({ type: Account.type, id: `acct-${i}` }))?.node ?? 'none';
    by[node] = (by[node] ?? 0) + 1;
  }
  return by;
}

/**
 * Every node, one at a time: SIGTERM (drain, close), restarted on a build whose wire protocol is one
 * minor newer. After n1's restart half the accounts are moved to it live from n2 (old to new build),
 * so that until n2's turn nodes of both versions serve.
 */
async function rollingUpgrade(w: World): Promise<void> {
  const next = makeNextBuild(w.dir);
  const c = await connectCluster({ nats: w.nats.urls(), name: w.cluster, log: () => undefined });
  try {
    const t0 = Date.now();
    for (const id of ['n1', 'n2'] as const) {
      const p = w.nodes.get(id)!;
      p.child.kill('SIGTERM');
      await p.exited;
      await w.startNode(id, { runtime: next.entry });
      if (!w.nodes.get(id)!.output().stdout.includes(`wire ${next.version}`))
        throw new Error(`${id} did not come back on wire ${next.version}`);
      if (id !== 'n1') continue;
      let moved = 0;
      for (let i = 0; i < ACCOUNTS; i += 2) {
        const ref = c.ref<typeof Account>({ type: Account.type, id: `acct-${i}` });
        if ((await c.locate(ref))?.node !== 'n2') continue;
        await c.migrate(ref, 'n1', { timeoutMs: 5000 }).then(
          () => moved++,
          () => undefined,
        );
      }
      const by = await accountsByNode(c);
      w.report.mid_roll = `${moved} moved live old→new; n1 (wire ${next.version}) ${by.n1 ?? 0}, n2 (wire ${WIRE_VERSION}) ${by.n2 ?? 0}`;
    }
    w.report.roll_ms = Date.now() - t0;
    w.report.wire = `${WIRE_VERSION}→${next.version}`;
  } finally {
    await c.close();
  }
}

/** The nats-server leading the mailbox stream stopped with `signal`, then restarted on its store. */
function serverStop(name: string, signal: 'SIGKILL' | 'SIGTERM', how: string): Scenario {
  return {
    name,
    what: `the nats-server leading the mailbox stream ${how}, restarted on its store`,
    async fault(w) {
      stopped = await mailboxLeader(w);
      w.report.stopped = stopped;
      await w.nats.stop(stopped, signal);
    },
    heal: (w) => w.nats.start(stopped),
  };
}

export const SCENARIOS: Scenario[] = [
  serverStop('nats-server-stop', 'SIGKILL', 'killed (SIGKILL)'),
  serverStop('nats-server-term', 'SIGTERM', 'stopped cleanly (SIGTERM, as systemctl stop)'),
  {
    name: 'node-kill',
    what: 'node n1 killed (SIGKILL), restarted under its id',
    async fault(w) {
      const n1 = w.nodes.get('n1')!;
      n1.child.kill('SIGKILL');
      await n1.exited;
    },
    heal: (w) => w.startNode('n1'),
  },
  {
    name: 'migration-kill',
    what: "n1's accounts migrated live to n2, and n1 killed (SIGKILL) while the moves run; restarted",
    fault: killDuringMigrations,
    heal: (w) => w.startNode('n1'),
  },
  {
    name: 'partition',
    what: 'host h1 (a nats-server and node n1) cut off by dropping all its packets, then healed',
    fault: async (w) => w.hosts.cut('h1'),
    heal: async (w) => w.hosts.heal('h1'),
  },
  {
    name: 'latency',
    what: '100 ms ± 20 ms one way on every route between hosts (userspace proxy), then removed',
    proxied: true,
    timeoutMs: 5000,
    // The fault is the latency itself: every answer is slower while it lasts; what counts is that none times out.
    slowMs: 5000,
    fault: async (w) => w.nats.impair({ delayMs: 100, jitterMs: 20 }),
    heal: async (w) => w.nats.impair({}),
  },
  {
    name: 'leader-kill',
    what: 'node n1 drained (SIGTERM) and the leading coordinator killed (SIGKILL) as the drain begins; the standby finishes the drain; n1 and the old leader restarted',
    operators: true,
    async setup(w) {
      await w.startCoordinator('c1', 'h1', { leaseMs: LEASE_MS, deploy: GRAPH });
      await w.startCoordinator('c2', 'h2', { leaseMs: LEASE_MS });
    },
    fault: killLeaderDuringDrain,
    async heal(w) {
      await w.startNode('n1');
      await w.startCoordinator('c1', 'h1', { leaseMs: LEASE_MS });
    },
  },
  {
    name: 'rolling-upgrade',
    what: 'n1 then n2 drained (SIGTERM) and restarted on a build whose wire protocol is one minor newer',
    fault: rollingUpgrade,
    heal: async () => undefined,
  },
];
