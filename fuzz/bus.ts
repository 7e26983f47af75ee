// The fuzz targets on the bus: each sends N hostile cases with a raw nats.js connection to one inbound
// edge of the node process (actor subjects, headers, batches, durable stream, activation, control,
// live-migration handoff, the attacked Counter's pull inbox, membership, the KV buckets, the coordinator's deploy). Replies go to `<inbox>.<case>[.<item>]`.
import { setTimeout as delay } from 'node:timers/promises';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { decode, encode } from '@stitch/runtime/internal';
import { irCase, irCorpus } from './offline.js';
import { mutate, mutateText, mutateValue, type Rng } from './prng.js';
import type { ReplyCounter } from './replies.js';
import {
  activationCorpus,
  controlCorpus,
  corpusCase,
  handlerMessage,
  handoffCorpus,
  jsonBytes,
  kvKey,
  membershipCorpus,
  messageCase,
  obituaryOf,
  pickMessage,
  type Scene,
  setHeader,
  stitchHeaders,
  stopsChecked,
  type TargetName,
  validBatch,
  valueCase,
} from './targets.js';

export interface CaseContext {
  rng: Rng;
  scene: Scene;
  raw: NatsConnection;
  cases: number;
  replies: ReplyCounter;
}

/** Flushes every `every` cases so the node's subscription never sees an unbounded burst. */
async function pace(raw: NatsConnection, i: number, every = 25): Promise<void> {
  if (i % every === every - 1) await raw.flush();
}

/** Sends the cases of one target; returns the approximate reached count, or -1 to count replies. */
export async function runBusTarget(target: TargetName, x: CaseContext): Promise<number> {
  const { rng, scene, raw, cases } = x;
  const actorSubject = `stitch.${scene.cluster}.actor.counter.${scene.fuzzId}`;
  // Nine cases in ten carry a reply subject, so whether they reached a handler can be counted.
  const replyOf = (i: number) => (rng.chance(0.9) ? { reply: `${scene.inbox}.${i}` } : {});
  switch (target) {
    case 'actor':
      for (let i = 0; i < cases; i++) {
        raw.publish(actorSubject, messageCase(rng), replyOf(i));
        await pace(raw, i);
      }
      return -1;
    case 'headers':
      for (let i = 0; i < cases; i++) {
        const data = rng.chance(0.8) ? handlerMessage(rng) : messageCase(rng);
        raw.publish(actorSubject, data, { headers: stitchHeaders(rng, i), ...replyOf(i) });
        await pace(raw, i, 10);
      }
      return -1;
    case 'batch':
      for (let i = 0; i < cases; i++) {
        const b = validBatch(rng, scene, i);
        const data = rng.chance(0.35) ? mutate(rng, b.data, pickMessage(rng)) : b.data;
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
    case 'durable':
      return fuzzDurable(x);
    case 'advisory':
      return fuzzAdvisory(x);
    case 'activation': {
      const corpus = activationCorpus(scene);
      const subject = `stitch.${scene.cluster}.activate.${scene.nodeId}`;
      for (let i = 0; i < cases; i++) {
        raw.publish(subject, corpusCase(rng, corpus, ['type', 'id']), replyOf(i));
        await pace(raw, i, 10);
      }
      return -1;
    }
    case 'control': {
      const corpus = controlCorpus(scene);
      const node = `stitch.${scene.cluster}.node.${scene.nodeId}`;
      for (let i = 0; i < cases; i++) {
        let data: Uint8Array;
        do data = corpusCase(rng, corpus, ['op', 'type', 'id']);
        while (stopsChecked(data, scene));
        const op = (decodeOr(data) as { op?: unknown } | null)?.op;
        // Commands to the control subject, questions to the query subject (and a few the other way).
        const asked = (op === 'hosts') !== rng.chance(0.1);
        raw.publish(`${node}.${asked ? 'query' : 'control'}`, data, replyOf(i));
        await pace(raw, i, 10);
      }
      return -1;
    }
    case 'handoff': {
      const corpus = handoffCorpus(scene);
      const subject = `stitch.${scene.cluster}.node.${scene.nodeId}.handoff`;
      for (let i = 0; i < cases; i++) {
        raw.publish(subject, corpusCase(rng, corpus, ['op', 'migration', 'type']), replyOf(i));
        await pace(raw, i, 10);
      }
      return -1;
    }
    case 'pulls':
      return fuzzPulls(x);
    case 'membership':
      return fuzzMembership(x);
    case 'kv':
      return fuzzKv(x);
    case 'deploy':
      return fuzzDeploy(x);
    default:
      throw new Error(`${target} is not a bus target`);
  }
}

async function fuzzDurable(x: CaseContext): Promise<number> {
  const { rng, scene, raw, cases } = x;
  const js = jetstream(raw);
  const subject = `stitch.${scene.cluster}.durable.counter.${scene.fuzzId}`;
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < cases; i++) {
    const h = stitchHeaders(rng, i);
    const replyTo = `${scene.inbox}.${i}`;
    const r = rng.next();
    setHeader(h, 'Stitch-Reply-To', r < 0.75 ? replyTo : r < 0.9 ? mutateText(rng, replyTo) : rng.text(60));
    if (rng.chance(0.5)) setHeader(h, 'Stitch-Sender', `fuzz-${rng.int(3)}`);
    // A refused publish (bad header, stream limits) is a result of the case, not a failure.
    inflight.push(js.publish(subject, messageCase(rng), { headers: h }).catch(() => undefined));
    if (inflight.length >= 32) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  return -1;
}

/**
 * Forged consumer-leader advisories (the node re-pulls an actor's consumer that lost its pull): the
 * attacked Counter's consumer (it consumes since the durable target), mutated and random names, any
 * payload. No reply: reached = cases naming the Counter's consumer, which a node watches.
 */
async function fuzzAdvisory(x: CaseContext): Promise<number> {
  const { rng, scene, raw, cases } = x;
  const prefix = `$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.stitch_${scene.cluster}_mailbox.`;
  const watched = `counter__${scene.fuzzId}`;
  let reached = 0;
  for (let i = 0; i < cases; i++) {
    const r = rng.next();
    const name = r < 0.6 ? watched : r < 0.8 ? mutateText(rng, watched) : rng.text(20);
    // A name that is not one subject token is not a subject this node subscribes to.
    if (!/^[^.*>\s]+$/.test(name)) continue;
    if (name === watched) reached++;
    const payload = rng.chance(0.5)
      ? new TextEncoder().encode(
          JSON.stringify({ type: 'io.nats.jetstream.advisory.v1.consumer_leader_elected', consumer: name }),
        )
      : messageCase(rng);
    raw.publish(`${prefix}${name}`, payload);
    await pace(raw, i);
  }
  return reached;
}

/** A subject nats.js will publish with: printable, no spaces, not empty. */
const subjectOf = (text: string) => text.replace(/[^\x21-\x7e]/g, 'x') || 'x';

/** JetStream status messages a pull inbox gets from the server, as a client could forge them. */
const PULL_STATUSES: [number, string][] = [
  [100, 'Idle Heartbeat'],
  [404, 'No Messages'],
  [408, 'Request Timeout'],
  [409, 'Exceeded MaxWaiting'],
  [409, 'Consumer Deleted'],
  [409, 'Consumer is push based'],
  [409, 'Leadership Change'],
  [400, 'Bad Request'],
  [503, 'No Responders'],
];

/**
 * Hostile messages to the pull inbox of the attacked Counter's durable consumer (under
 * `stitch.<c>.pull`, which nodes read and, without an auth config, anyone may publish to): random
 * bodies, Counter messages with forged JetStream acknowledgement subjects (real-looking sequences),
 * forged status messages. The inbox is learned from a durable message's delivery; reached = cases
 * sent to it. The check after this target asks the attacked Counter in durable mode too.
 */
async function fuzzPulls(x: CaseContext): Promise<number> {
  const { rng, scene, raw, cases } = x;
  // The node's pulls name the inbox as their reply subject (a delivery comes under the subject its
  // message was published to, not the inbox's).
  // Followed all along: a consumer read again pulls on an inbox of its own, which the next cases use.
  let inbox: string | undefined;
  const sub = raw.subscribe(
    `$JS.API.CONSUMER.MSG.NEXT.stitch_${scene.cluster}_mailbox.counter__${scene.fuzzId}`,
    {
      callback: (_e, m) => {
        if (m.reply?.startsWith(`stitch.${scene.cluster}.pull.`)) inbox = m.reply;
      },
    },
  );
  const js = jetstream(raw);
  const durable = `stitch.${scene.cluster}.durable.counter.${scene.fuzzId}`;
  // A pull is renewed as it is used up or expires: messages make the node pull again.
  for (let k = 0; k < 100 && inbox === undefined; k++) {
    const h = natsHeaders();
    h.set('Stitch-Sender', 'fuzz-pulls');
    await js.publish(durable, encode({ type: 'add', by: 0 }), { headers: h });
    await delay(50);
  }
  if (inbox === undefined) {
    sub.unsubscribe();
    throw new Error('no pull inbox of the attacked Counter was seen');
  }
  const ack = (seq: number) =>
    `$JS.ACK.stitch_${scene.cluster}_mailbox.counter__${scene.fuzzId}.1.${seq}.${seq}.${Date.now()}000000.0`;
  const first: string = inbox;
  for (let i = 0; i < cases; i++) {
    const to = inbox ?? first;
    const r = rng.next();
    if (r < 0.3) {
      // A Counter message with a forged acknowledgement subject (a sequence the stream may hold).
      const reply = rng.chance(0.8)
        ? ack(1 + rng.int(200))
        : subjectOf(mutateText(rng, ack(1 + rng.int(200))));
      raw.publish(to, rng.chance(0.7) ? handlerMessage(rng) : messageCase(rng), { reply });
    } else if (r < 0.6) {
      const [code, description] = rng.pick(PULL_STATUSES);
      const h = natsHeaders(code, description);
      if (rng.chance(0.5)) h.set('Nats-Pending-Messages', String(rng.int(1000)));
      if (rng.chance(0.5)) h.set('Nats-Pending-Bytes', rng.pick(['0', '-1', 'x', String(rng.int(1e9))]));
      raw.publish(to, rng.chance(0.8) ? new Uint8Array(0) : rng.bytes(rng.int(32)), { headers: h });
    } else if (r < 0.8) {
      raw.publish(to, rng.bytes(rng.int(64)), rng.chance(0.5) ? { reply: subjectOf(rng.text(30)) } : {});
    } else {
      raw.publish(to, messageCase(rng), { headers: stitchHeaders(rng, i), reply: ack(1 + rng.int(200)) });
    }
    await pace(raw, i);
  }
  sub.unsubscribe();
  return cases;
}

/** Membership events have no reply: reached = cases whose bytes are a JSON object with a string `kind`. */
async function fuzzMembership(x: CaseContext): Promise<number> {
  const { rng, scene, raw, cases } = x;
  const subject = `stitch.${scene.cluster}.membership`;
  let reached = 0;
  for (let i = 0; i < cases; i++) {
    let data: Uint8Array;
    do {
      const r = rng.next();
      if (r < 0.1) data = rng.bytes(rng.int(64));
      else if (r < 0.2) data = jsonBytes(randomJson(rng, 3));
      else if (r < 0.35) data = mutate(rng, jsonBytes(rng.pick(membershipCorpus(rng))));
      else data = valueCase(rng, membershipCorpus(rng), jsonBytes);
    } while (obituaryOf(data, scene.nodeId));
    if (jsonKind(data)) reached++;
    raw.publish(subject, data);
    await pace(raw, i);
  }
  return reached;
}

/** Deployments sent to the coordinator actor: sample graphs with edits, and edited deploy messages. */
async function fuzzDeploy(x: CaseContext): Promise<number> {
  const { rng, scene, raw, cases } = x;
  const subject = `stitch.${scene.cluster}.actor.stitch-coordinator.${scene.coordinatorId}`;
  const corpus = irCorpus();
  // Deploys are serialised in the coordinator: keep a few in flight, as a client waiting for answers would.
  const base = x.replies.received;
  for (let i = 0; i < cases; i++) {
    const msg: Record<string, unknown> = {
      type: 'deploy',
      mlir: irCase(rng, corpus),
      name: `fz-${rng.int(8)}`,
    };
    const r = rng.next();
    const data =
      r < 0.75 ? encode(msg) : r < 0.9 ? valueCase(rng, [msg], encode, ['type']) : mutate(rng, encode(msg));
    raw.publish(subject, data, { reply: `${scene.inbox}.${i}` });
    await raw.flush();
    const until = Date.now() + 10_000;
    while (i + 1 - (x.replies.received - base) > 3 && Date.now() < until) await delay(2);
  }
  return -1;
}

function decodeOr(data: Uint8Array): unknown {
  try {
    return decode(data);
  } catch {
    return undefined;
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
      return rng.pick(['join', 'leave', 'dead', 'ghost-1']);
    case 5:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['kind', 'nodeId', 'revision', 'at', 'node', 'epoch', 'actorTypes', 'devices', 'x'];
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
  const read = async (b: keyof typeof buckets, key: string, json: boolean) => {
    const v = (await buckets[b].get(key))?.value;
    return v ? (json ? JSON.parse(Buffer.from(v).toString('utf8')) : decode(v)) : {};
  };
  const seeds = {
    directory: await read('directory', `counter.${scene.fuzzId}`, false),
    nodes: await read('nodes', scene.nodeId, true),
    state: await read('state', `counter.${scene.fuzzId}`, false),
  };
  const protectedKeys = new Set([`counter.${scene.checkId}`]);
  let reached = 0;
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < cases; i++) {
    const which = rng.pick(['directory', 'nodes', 'state'] as const);
    let key = kvKey(rng);
    while (protectedKeys.has(key) || (which === 'nodes' && key === scene.nodeId)) key = kvKey(rng);
    const toBytes = which === 'nodes' ? jsonBytes : encode;
    const r = rng.next();
    const value =
      r < 0.1
        ? rng.bytes(rng.int(64))
        : r < 0.3
          ? mutate(rng, toBytes(seeds[which]), undefined, 8192)
          : valueCase(rng, [seeds[which], mutateValue(rng, seeds[which])], toBytes);
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
