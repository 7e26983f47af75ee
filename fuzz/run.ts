// Fuzzer for the runtime's inbound edges: starts a nats-server, one node process hosting Counter and a
// client, throws N hostile cases at each target with a raw nats.js connection, then checks that the
// node process is the same one, alive, and that a Counter the cases never address still counts exactly.
// Prints one JSON line per target. Usage: pnpm fuzz [--cases=N] [--seed=S] [--targets=a,b]
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import {
  connect,
  createInbox,
  type Msg,
  type NatsConnection,
  headers as natsHeaders,
} from '@nats-io/transport-node';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { decode, decodeReplies, encode } from '@stitch/runtime/internal';
import { Counter } from '../test/fixtures/runtime-actors.js';
import { mutate, mutateText, Rng } from './prng.js';
import {
  activationCorpus,
  controlCorpus,
  kvKey,
  membershipCorpus,
  messageCase,
  obituaryOf,
  pickMessage,
  type Scene,
  setHeader,
  stitchHeaders,
  stopsChecked,
  TARGETS,
  type TargetName,
  validBatch,
} from './targets.js';

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
   * Cases that got past decoding into a handler: counted from the replies that come back to the
   * cases' reply subjects (actor, headers, batch, durable, activation, control) that are not errors
   * with code ACTOR_BAD_MESSAGE, ACTOR_OVERLOADED or RUNTIME_OPTIONS (bad actor type/id). membership and
   * kv have no replies: there it is approximated by the cases whose bytes decode to the shape the
   * runtime reads (a JSON object with a string `kind` / a msgpack or JSON object).
   */
  reached_handler: number;
  crashes: number;
  still_serving: boolean;
  max_rss_mb: number;
  seed: number;
}

export const DEFAULT_SEED = 0x5717c4;
const CLUSTER = 'fuzz';
const NODE_ID = 'fuzz-node';
const NOT_REACHED = new Set(['ACTOR_BAD_MESSAGE', 'ACTOR_OVERLOADED', 'RUNTIME_OPTIONS']);
const nodeScript = fileURLToPath(new URL('./node.ts', import.meta.url));

interface NodeProc {
  child: ChildProcess;
  pid: number;
  exited: boolean;
}

async function startNodeProc(nats: string, verbose: boolean): Promise<NodeProc> {
  const child = fork(nodeScript, [JSON.stringify({ nats, cluster: CLUSTER, nodeId: NODE_ID, verbose })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const proc: NodeProc = { child, pid: child.pid ?? -1, exited: false };
  child.once('exit', () => {
    proc.exited = true;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('fuzz node did not report ready in 30 s')), 30_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`fuzz node exited (${code ?? signal}) before it was ready`));
    });
  });
  return proc;
}

async function stopNodeProc(proc: NodeProc | undefined): Promise<void> {
  if (!proc || proc.exited) return;
  const gone = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** VmRSS of a process in MiB, or 0 when it cannot be read. */
function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : 0;
  } catch {
    return 0;
  }
}

/** Counts replies per case; a case reached its handler when one reply was not a decoding error. */
class ReplyCounter {
  readonly reached = new Set<number>();
  last = Date.now();

  constructor(readonly inbox: string) {}

  #caseOf(subject: string): number | undefined {
    if (!subject.startsWith(`${this.inbox}.`)) return undefined;
    const n = Number(subject.slice(this.inbox.length + 1).split('.')[0]);
    return Number.isInteger(n) ? n : undefined;
  }

  take(m: Msg): void {
    this.last = Date.now();
    if (m.headers?.get('Stitch-Batch')) {
      try {
        for (const r of decodeReplies(m.data)) {
          const c = this.#caseOf(r.reply);
          if (c !== undefined && (r.ok || !NOT_REACHED.has(r.error.code))) this.reached.add(c);
        }
      } catch {
        // a reply batch this counter cannot read counts nothing
      }
      return;
    }
    const c = this.#caseOf(m.subject);
    const code = m.headers?.get('Stitch-Error-Code');
    if (c !== undefined && (!code || !NOT_REACHED.has(code))) this.reached.add(c);
  }
}

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

/** Runs every target; never throws for a failed target (that is in its result), only for setup. */
export async function main(options: FuzzOptions = {}, print: (line: string) => void = () => undefined) {
  const cases = options.cases ?? 10_000;
  const seed = options.seed ?? DEFAULT_SEED;
  const targets = options.targets ?? TARGETS;
  for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}`);
  const settleMs = options.settleMs ?? 15_000;
  let nats: EmbeddedNats | undefined;
  let node: NodeProc | undefined;
  let client: Cluster | undefined;
  let raw: NatsConnection | undefined;
  const results: TargetResult[] = [];
  try {
    nats = await startEmbeddedNats();
    node = await startNodeProc(nats.url, options.verbose === true);
    client = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
    raw = await connect({ servers: nats.url });
    const inbox = createInbox();
    const scene: Scene = {
      cluster: CLUSTER,
      nodeId: NODE_ID,
      fuzzId: 'fuzz-target',
      checkId: 'fuzz-check',
      inbox,
    };
    const replies = new ReplyCounter(inbox);
    raw.subscribe(`${inbox}.>`, { callback: (_err, m) => replies.take(m) });
    const check = client.get(Counter, scene.checkId);
    let expected = (await check.ask({ type: 'get' }, { timeoutMs: 15_000 })) as number;

    for (let t = 0; t < targets.length; t++) {
      const target = targets[t] as TargetName;
      const rng = new Rng((seed ^ Math.imul(t + 1, 0x9e3779b1)) >>> 0);
      if (!node || node.exited) node = await startNodeProc(nats.url, options.verbose === true);
      const pid = node.pid;
      let maxRss = rssMb(pid);
      const sampler = setInterval(() => {
        maxRss = Math.max(maxRss, rssMb(pid));
      }, 200);
      replies.reached.clear();
      let approxReached = 0;
      // The attacked Counter runs (again: a previous target may have stopped or crashed it).
      await client
        .get(Counter, scene.fuzzId)
        .ask({ type: 'get' }, { timeoutMs: 5000 })
        .catch(() => undefined);
      const ctx: CaseContext = { rng, scene, raw, client, cases };
      try {
        approxReached = await runTarget(target, ctx);
      } catch (err) {
        print(JSON.stringify({ target, setupError: String(err) }));
      }
      await raw.flush();
      // Wait for the replies to stop coming (bounded).
      const until = Date.now() + settleMs;
      replies.last = Date.now();
      while (Date.now() < until && Date.now() - replies.last < 500) await delay(100);
      clearInterval(sampler);
      maxRss = Math.max(maxRss, rssMb(pid));

      let serving = !node.exited && alive(pid) && node.pid === pid;
      if (serving) {
        try {
          for (let k = 1; k <= 5; k++) {
            expected += k;
            const n = await check.ask({ type: 'add', by: k }, { timeoutMs: 10_000 });
            if (n !== expected) {
              print(JSON.stringify({ target, countMismatch: { got: n, expected } }));
              serving = false;
              expected = typeof n === 'number' ? n : expected;
              break;
            }
          }
        } catch (err) {
          print(JSON.stringify({ target, checkError: String(err) }));
          serving = false;
        }
      }
      const result: TargetResult = {
        target,
        cases,
        reached_handler: approxReached >= 0 ? approxReached : replies.reached.size,
        crashes: node.exited || node.pid !== pid ? 1 : 0,
        still_serving: serving,
        max_rss_mb: maxRss,
        seed,
      };
      results.push(result);
      print(JSON.stringify(result));
    }
  } finally {
    await raw?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
    await stopNodeProc(node);
    await nats?.stop();
  }
  return results;
}

interface CaseContext {
  rng: Rng;
  scene: Scene;
  raw: NatsConnection;
  client: Cluster;
  cases: number;
}

/** Flushes every `every` cases so the node's subscription never sees an unbounded burst. */
async function pace(raw: NatsConnection, i: number, every = 25): Promise<void> {
  if (i % every === every - 1) await raw.flush();
}

/** Sends the cases of one target; returns the approximate reached count, or -1 to count replies. */
async function runTarget(target: TargetName, x: CaseContext): Promise<number> {
  const { rng, scene, raw, cases } = x;
  const actorSubject = `stitch.${scene.cluster}.actor.counter.${scene.fuzzId}`;
  const replyOf = (i: number) => (rng.chance(0.5) ? { reply: `${scene.inbox}.${i}` } : {});
  switch (target) {
    case 'actor':
      for (let i = 0; i < cases; i++) {
        raw.publish(actorSubject, messageCase(rng), replyOf(i));
        await pace(raw, i);
      }
      return -1;
    case 'headers':
      for (let i = 0; i < cases; i++) {
        const data = rng.chance(0.8) ? pickMessage(rng) : messageCase(rng);
        raw.publish(actorSubject, data, { headers: stitchHeaders(rng, i), ...replyOf(i) });
        await pace(raw, i);
      }
      return -1;
    case 'batch':
      for (let i = 0; i < cases; i++) {
        const b = validBatch(rng, scene, i);
        const data = rng.chance(0.8) ? mutate(rng, b.data, pickMessage(rng)) : b.data;
        const h = natsHeaders();
        setHeader(
          h,
          'Stitch-Batch',
          rng.chance(0.85) ? String(b.n) : rng.pick(['0', '1', '-1', 'x', '99999']),
        );
        setHeader(h, 'Stitch-Sender', `fuzz-${rng.int(3)}`);
        raw.publish(actorSubject, data, { headers: h, ...(b.reply ? { reply: b.reply } : {}) });
        await pace(raw, i);
      }
      return -1;
    case 'durable': {
      const js = jetstream(raw);
      const subject = `stitch.${scene.cluster}.durable.counter.${scene.fuzzId}`;
      const inflight: Promise<unknown>[] = [];
      for (let i = 0; i < cases; i++) {
        const h = stitchHeaders(rng, i);
        const replyTo = `${scene.inbox}.${i}`;
        const r = rng.next();
        setHeader(
          h,
          'Stitch-Reply-To',
          r < 0.6 ? replyTo : r < 0.9 ? mutateText(rng, replyTo) : rng.text(60),
        );
        if (rng.chance(0.5)) setHeader(h, 'Stitch-Sender', `fuzz-${rng.int(3)}`);
        // A refused publish (bad header, stream limits) is a result of the case, not a failure.
        inflight.push(js.publish(subject, messageCase(rng), { headers: h }).catch(() => undefined));
        if (inflight.length >= 32) await Promise.all(inflight.splice(0));
      }
      await Promise.all(inflight);
      return -1;
    }
    case 'activation': {
      const corpus = activationCorpus(scene);
      const subject = `stitch.${scene.cluster}.activate.${scene.nodeId}`;
      for (let i = 0; i < cases; i++) {
        const r = rng.next();
        const data =
          r < 0.15 ? rng.bytes(rng.int(48)) : r < 0.3 ? rng.pick(corpus) : mutate(rng, rng.pick(corpus));
        raw.publish(subject, data, replyOf(i));
        await pace(raw, i, 10);
      }
      return -1;
    }
    case 'control': {
      const corpus = controlCorpus(scene);
      const subject = `stitch.${scene.cluster}.node.${scene.nodeId}.control`;
      for (let i = 0; i < cases; i++) {
        let data: Uint8Array;
        do {
          data = rng.chance(0.15) ? rng.bytes(rng.int(48)) : mutate(rng, rng.pick(corpus), rng.pick(corpus));
        } while (stopsChecked(data, scene));
        raw.publish(subject, data, replyOf(i));
        await pace(raw, i, 10);
      }
      return -1;
    }
    case 'membership': {
      const subject = `stitch.${scene.cluster}.membership`;
      let reached = 0;
      for (let i = 0; i < cases; i++) {
        let data: Uint8Array;
        do {
          const r = rng.next();
          if (r < 0.15) data = rng.bytes(rng.int(64));
          else if (r < 0.3) data = Buffer.from(JSON.stringify(randomJson(rng, 3)));
          else data = mutate(rng, rng.pick(membershipCorpus(rng)));
        } while (obituaryOf(data, scene.nodeId));
        if (jsonKind(data)) reached++;
        raw.publish(subject, data);
        await pace(raw, i);
      }
      return reached;
    }
    case 'kv':
      return fuzzKv(x);
  }
}

/** A random JSON value up to `depth` levels deep. */
function randomJson(rng: Rng, depth: number): unknown {
  const r = rng.int(depth > 0 ? 8 : 5);
  switch (r) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1e308, 2 ** 53 + 1, rng.int(1e6)]);
    case 3:
      return rng.text(20);
    case 4:
      return rng.pick(['join', 'leave', 'dead', NODE_ID, 'ghost-1']);
    case 5:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = [
        'kind',
        'nodeId',
        'revision',
        'at',
        'node',
        'epoch',
        'actorTypes',
        'devices',
        '__proto__',
        'x',
      ];
      for (let k = rng.int(5); k > 0; k--) o[rng.pick(keys)] = randomJson(rng, depth - 1);
      return o;
    }
  }
}

function jsonKind(data: Uint8Array): boolean {
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as { kind?: unknown } | null;
    return typeof v?.kind === 'string';
  } catch {
    return false;
  }
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null;
}

/** Random values under random keys in the directory, nodes and state buckets. */
async function fuzzKv(x: CaseContext): Promise<number> {
  const { rng, scene, raw, cases } = x;
  const kvm = new Kvm(raw);
  const buckets = {
    directory: await kvm.open(`stitch_${scene.cluster}_directory`),
    nodes: await kvm.open(`stitch_${scene.cluster}_nodes`),
    state: await kvm.open(`stitch_${scene.cluster}_state`),
  };
  // Seeds: the real entries as the runtime wrote them.
  const seeds = {
    directory:
      (await buckets.directory.get(`counter.${scene.fuzzId}`))?.value ?? encode({ node: NODE_ID, epoch: 1 }),
    nodes: (await buckets.nodes.get(NODE_ID))?.value ?? Buffer.from('{}'),
    state: (await buckets.state.get(`counter.${scene.fuzzId}`))?.value ?? encode({ snapshot: { n: 1 } }),
  };
  const protectedKeys = new Set([`counter.${scene.checkId}`]);
  let reached = 0;
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < cases; i++) {
    const which = rng.pick(['directory', 'nodes', 'state'] as const);
    let key = kvKey(rng);
    while (protectedKeys.has(key) || (which === 'nodes' && key === NODE_ID)) key = kvKey(rng);
    const value = rng.chance(0.15) ? rng.bytes(rng.int(64)) : mutate(rng, seeds[which], undefined, 8192);
    try {
      reached += isObject(which === 'nodes' ? JSON.parse(Buffer.from(value).toString('utf8')) : decode(value))
        ? 1
        : 0;
    } catch {
      // not decodable: does not count as reaching the reader
    }
    inflight.push(buckets[which].put(key, value).catch(() => undefined));
    if (inflight.length >= 32) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  return reached;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await main(parseArgs(process.argv.slice(2)), (line) => console.log(line)).catch((err) => {
    console.error(err);
    process.exit(2);
  });
  process.exit(results.every((r) => r.crashes === 0 && r.still_serving) ? 0 : 1);
}
