// Fuzzer for stitch's inbound edges: starts a nats-server and one node process hosting Counter and a
// coordinator, throws N hostile cases at each target with a raw nats.js connection, then checks that
// the node process is the same one, alive, and that a Counter the cases never address still counts
// exactly. The `ir` and `profile` targets run the parser and the planner in this process instead.
// Prints one JSON line per target. Usage: pnpm fuzz [--cases=N] [--seed=S] [--targets=a,b]
import { setTimeout as delay } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { connect, createInbox, type NatsConnection } from '@nats-io/transport-node';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { Counter } from '../test/fixtures/runtime-actors.js';
import { runBusTarget } from './bus.js';
import { fuzzIr, fuzzProfile, type OfflineResult } from './offline.js';
import { Rng } from './prng.js';
import { alive, memoryOf, type NodeProc, rssMb, startNodeProc, stopNodeProc } from './procs.js';
import { ReplyCounter } from './replies.js';
import { type Scene, TARGETS, type TargetName } from './targets.js';

export interface FuzzOptions {
  cases?: number;
  seed?: number;
  targets?: readonly TargetName[];
  /** Longest wait for replies to stop arriving after a target's cases (ms). */
  settleMs?: number;
  /** Show the node process's runtime log (hostile input is logged there). */
  verbose?: boolean;
}

export interface TargetResult {
  target: TargetName;
  cases: number;
  /**
   * Cases that got past decoding into a handler. Bus targets with replies (actor, headers, batch,
   * durable, activation, control, handoff, deploy): replies that are not errors with code ACTOR_BAD_MESSAGE,
   * ACTOR_OVERLOADED or RUNTIME_OPTIONS (bad actor type/id). membership and kv have no replies: cases
   * whose bytes decode to the shape the readers take (a JSON object with a string `kind`; a msgpack or
   * JSON object). ir: cases that parsed; profile: cases whose JSON parsed (then checked and planned).
   */
  reached_handler: number;
  crashes: number;
  still_serving: boolean;
  max_rss_mb: number;
  seed: number;
  /** Bus targets: the node process's `process.memoryUsage()` after the target, MiB. */
  memory_mb?: Record<string, number>;
  /** Bus targets: the replies by error code (`ok`: success). */
  reply_codes?: Record<string, number>;
  /** In-process targets: the first few untyped errors (case number and message). */
  errors?: string[];
}

export const DEFAULT_SEED = 0x5717c4;
const OFFLINE: Partial<Record<TargetName, (rng: Rng, cases: number) => OfflineResult>> = {
  ir: fuzzIr,
  profile: fuzzProfile,
};

function parseArgs(argv: readonly string[]): FuzzOptions {
  const opts: FuzzOptions = {};
  for (const a of argv) {
    const [k, v] = a.replace(/^--/, '').split('=');
    if (k === 'cases') opts.cases = Number(v);
    else if (k === 'seed') opts.seed = Number(v);
    else if (k === 'targets') opts.targets = (v ?? '').split(',') as TargetName[];
    else if (k === 'settle-ms') opts.settleMs = Number(v);
    else if (k === 'verbose') opts.verbose = true;
    else throw new Error(`unknown argument ${a}; use --cases=N --seed=S --targets=a,b --settle-ms=MS`);
  }
  return opts;
}

const rngFor = (seed: number, t: number) => new Rng((seed ^ Math.imul(t + 1, 0x9e3779b1)) >>> 0);

interface Bench {
  nats: EmbeddedNats;
  node: NodeProc;
  client: Cluster;
  raw: NatsConnection;
  scene: Scene;
  replies: ReplyCounter;
  /** What the checked Counter holds now. */
  expected: number;
}

/** Runs every target; never throws for a failed target (that is in its result), only for setup. */
export async function main(options: FuzzOptions = {}, print: (line: string) => void = () => undefined) {
  const cases = options.cases ?? 10_000;
  const seed = options.seed ?? DEFAULT_SEED;
  const targets = options.targets ?? TARGETS;
  for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}`);
  const results: TargetResult[] = [];
  const report = (r: TargetResult) => {
    results.push(r);
    print(JSON.stringify(r));
  };
  for (const [t, target] of targets.entries()) {
    const offline = OFFLINE[target];
    if (!offline) continue;
    const before = process.memoryUsage.rss();
    const r = offline(rngFor(seed, t), cases);
    const maxRss = Math.max(before, process.memoryUsage.rss()) / 2 ** 20;
    report({
      target,
      cases,
      reached_handler: r.reached,
      crashes: r.crashes,
      still_serving: r.crashes === 0,
      max_rss_mb: Math.round(maxRss * 10) / 10,
      seed,
      ...(r.examples.length ? { errors: r.examples } : {}),
    });
  }
  const busTargets = targets.filter((t) => !OFFLINE[t]);
  if (busTargets.length === 0) return results;
  const b = await openBench(options.verbose === true);
  try {
    for (const target of busTargets)
      report(await runOnBus(b, target, rngFor(seed, targets.indexOf(target)), cases, options, print, seed));
  } finally {
    await closeBench(b);
  }
  // In the order asked for (the in-process targets ran first).
  return results.sort((x, y) => targets.indexOf(x.target) - targets.indexOf(y.target));
}

async function openBench(verbose: boolean): Promise<Bench> {
  const scene: Omit<Scene, 'inbox'> = {
    cluster: 'fuzz',
    nodeId: 'fuzz-node',
    fuzzId: 'fuzz-target',
    checkId: 'fuzz-check',
    coordinatorId: 'fuzz-coordinator',
  };
  const nats = await startEmbeddedNats();
  let node: NodeProc | undefined;
  let client: Cluster | undefined;
  try {
    node = await startNodeProc({ nats: nats.url, ...scene, verbose });
    client = await connectCluster({ nats: nats.url, name: scene.cluster, log: () => undefined });
    const raw = await connect({ servers: nats.url });
    const inbox = createInbox();
    const replies = new ReplyCounter(inbox);
    raw.subscribe(`${inbox}.>`, { callback: (_err, m) => replies.take(m) });
    const expected = (await client
      .get(Counter, scene.checkId)
      .ask({ type: 'get' }, { timeoutMs: 15_000 })) as number;
    return { nats, node, client, raw, scene: { ...scene, inbox }, replies, expected };
  } catch (err) {
    await client?.close().catch(() => undefined);
    await stopNodeProc(node);
    await nats.stop();
    throw err;
  }
}

async function closeBench(b: Bench): Promise<void> {
  await b.raw.close().catch(() => undefined);
  await b.client.close().catch(() => undefined);
  await stopNodeProc(b.node);
  await b.nats.stop();
}

async function runOnBus(
  b: Bench,
  target: TargetName,
  rng: Rng,
  cases: number,
  options: FuzzOptions,
  print: (line: string) => void,
  seed: number,
): Promise<TargetResult> {
  const config = { nats: b.nats.url, ...b.scene, verbose: options.verbose === true };
  if (b.node.exited) b.node = await startNodeProc(config);
  const { pid } = b.node;
  let maxRss = rssMb(pid);
  const sampler = setInterval(() => {
    maxRss = Math.max(maxRss, rssMb(pid));
  }, 200);
  b.replies.reset();
  let approxReached = 0;
  // The attacked Counter runs (again: a previous target may have stopped or crashed it).
  const attackedBefore = await b.client
    .get(Counter, b.scene.fuzzId)
    .ask({ type: 'get' }, { timeoutMs: 5000 })
    .catch(() => undefined);
  try {
    approxReached = await runBusTarget(target, {
      rng,
      scene: b.scene,
      raw: b.raw,
      cases,
      replies: b.replies,
    });
  } catch (err) {
    print(JSON.stringify({ target, setupError: String(err) }));
  }
  await b.raw.flush();
  // Wait for the replies to stop coming (bounded).
  const until = Date.now() + (options.settleMs ?? 15_000);
  b.replies.last = Date.now();
  while (Date.now() < until && Date.now() - b.replies.last < 500) await delay(100);
  clearInterval(sampler);
  maxRss = Math.max(maxRss, rssMb(pid));
  const memory = await memoryOf(b.node);
  const serving =
    !b.node.exited &&
    alive(pid) &&
    b.node.pid === pid &&
    (await countsExactly(b, target, print)) &&
    (target !== 'pulls' || (await durableAnswers(b, target, attackedBefore, print)));
  return {
    target,
    cases,
    reached_handler: approxReached >= 0 ? approxReached : b.replies.reached.size,
    crashes: b.node.exited || b.node.pid !== pid ? 1 : 0,
    still_serving: serving,
    max_rss_mb: maxRss,
    seed,
    ...(memory ? { memory_mb: memory } : {}),
    ...(b.replies.received ? { reply_codes: Object.fromEntries(b.replies.codes) } : {}),
  };
}

/**
 * The attacked Counter still answers durable asks (its consumer was not silenced) and holds what it
 * held before: what reached its pull inbox from a client is not the stream's, and must not run.
 */
async function durableAnswers(
  b: Bench,
  target: TargetName,
  before: unknown,
  print: (line: string) => void,
): Promise<boolean> {
  try {
    const ref = b.client.get(Counter, b.scene.fuzzId);
    for (let k = 0; k < 3; k++) {
      const n = await ref.ask({ type: 'get' }, { mode: 'durable', timeoutMs: 10_000 });
      if (n !== before) {
        print(JSON.stringify({ target, forgedApplied: { before, after: n } }));
        return false;
      }
    }
    return true;
  } catch (err) {
    print(JSON.stringify({ target, durableError: String(err) }));
    return false;
  }
}

/** Five adds to the checked Counter come back with exactly the expected totals. */
async function countsExactly(b: Bench, target: TargetName, print: (line: string) => void): Promise<boolean> {
  const check = b.client.get(Counter, b.scene.checkId);
  try {
    for (let k = 1; k <= 5; k++) {
      b.expected += k;
      const n = await check.ask({ type: 'add', by: k }, { timeoutMs: 10_000 });
      if (n !== b.expected) {
        print(JSON.stringify({ target, countMismatch: { got: n, expected: b.expected } }));
        b.expected = typeof n === 'number' ? n : b.expected;
        return false;
      }
    }
    return true;
  } catch (err) {
    print(JSON.stringify({ target, checkError: String(err) }));
    return false;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await main(parseArgs(process.argv.slice(2)), (line) => console.log(line)).catch((err) => {
    console.error(err);
    process.exit(2);
  });
  process.exit(results.every((r) => r.crashes === 0 && r.still_serving) ? 0 : 1);
}
