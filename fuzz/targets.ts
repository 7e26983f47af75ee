// The fuzz targets: each turns a case number into one hostile message (or bucket write) on one inbound
// edge of the runtime. Most cases are mutations of a seed corpus of valid messages, so they get past
// decoding and into the handlers; the rest are random bytes.
import { type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node';
import { decode, encode, encodeRequests, newTraceparent } from '@stitch/runtime/internal';
import { mutate, mutateText, mutateValue, type Rng } from './prng.js';

export const TARGETS = [
  'actor',
  'headers',
  'batch',
  'durable',
  'advisory',
  'activation',
  'control',
  'handoff',
  'pulls',
  'membership',
  'kv',
  'deploy',
  'ir',
  'profile',
] as const;
export type TargetName = (typeof TARGETS)[number];

/** What the fuzz cases know of the cluster under test. */
export interface Scene {
  cluster: string;
  nodeId: string;
  /** The Counter id the cases attack. */
  fuzzId: string;
  /** The Counter id the cases never address; the check after each target counts on it. */
  checkId: string;
  /** Id of the coordinator actor (`stitch-coordinator/<id>`) the deploy cases go to. */
  coordinatorId: string;
  /** Reply subjects of the cases start with this (`<inbox>.<case>[.<item>]`). */
  inbox: string;
}

export const messageCorpus: unknown[] = [
  { type: 'add', by: 1 },
  { type: 'add', by: 0 },
  { type: 'add', by: -3 },
  { type: 'add', by: 1.5 },
  { type: 'add', by: 2 ** 53 },
  { type: 'add', by: 'one' },
  { type: 'add' },
  { type: 'add', by: 1, extra: { nested: [1, 2, { deep: [null, true] }] } },
  { type: 'get' },
  { type: 'get', pad: 'x'.repeat(300) },
  { type: 'fail' },
  { type: 'nope' },
  { type: '' },
  { type: 42 },
  { type: '$outcome', key: 'k1' },
  { type: 'add', by: new Uint8Array([1, 2, 3]) },
  { type: 'add', by: [1, 2, 3] },
  [{ type: 'add', by: 1 }],
  'add',
  null,
  {},
];
const encodedMessages = messageCorpus.map((m) => encode(m));

export function pickMessage(rng: Rng): Uint8Array {
  return rng.pick(encodedMessages);
}

/** A valid message to one of Counter's handlers, encoded. */
export function handlerMessage(rng: Rng): Uint8Array {
  return encode(rng.pick(handlerMessages));
}

/** Field names the runtime's messages and records use: mutations add them with odd values. */
const FIELD_NAMES = ['type', 'by', 'key', 'id', 'op', 'node', 'epoch', 'kind', 'nodeId', 'snapshot', 'reply'];

/**
 * A corpus value with value-level edits, encoded: it decodes, so it tests the handlers and their
 * checks. Three times in four the `keep` fields stay (so the case reaches the handler they select).
 * Falls back to byte edits when the edited value does not encode.
 */
export function valueCase(
  rng: Rng,
  seeds: readonly unknown[],
  toBytes = encode,
  keep: readonly string[] = [],
): Uint8Array {
  const seed = rng.pick(seeds);
  try {
    return toBytes(mutateValue(rng, seed, FIELD_NAMES, rng.chance(0.75) ? keep : []));
  } catch {
    return mutate(rng, toBytes(seed));
  }
}

/** Messages that select a handler of Counter, with payloads of every shape. */
const handlerMessages = messageCorpus.filter(
  (m) =>
    typeof m === 'object' &&
    m !== null &&
    ['add', 'get', 'fail'].includes((m as { type?: unknown }).type as string),
);

/** Most cases: value-level edits of messages to Counter's handlers; then byte-level edits, valid messages and random bytes. */
export function messageCase(rng: Rng): Uint8Array {
  const r = rng.next();
  if (r < 0.08) return rng.bytes(rng.int(64));
  if (r < 0.18) return pickMessage(rng);
  if (r < 0.3) return mutate(rng, pickMessage(rng), pickMessage(rng));
  return valueCase(rng, handlerMessages, encode, ['type']);
}

const STITCH_HEADERS = [
  'Stitch-Chunk',
  'Stitch-Batch',
  'Stitch-Deadline',
  'traceparent',
  'Stitch-Sender',
  'Stitch-Idempotency-Key',
] as const;

function headerValue(rng: Rng, name: string, i: number): string {
  const valid: Record<string, () => string> = {
    // Mostly a whole message in one chunk, so the case completes and reaches the actor.
    'Stitch-Chunk': () => (rng.chance(0.95) ? `c${i}:0:1` : `c${i}:${rng.int(3)}:${1 + rng.int(3)}`),
    // A batch count on a message that is not a batch: the decoder must refuse it.
    'Stitch-Batch': () => String(rng.int(6)),
    'Stitch-Deadline': () => String(Date.now() + rng.pick([-60_000, 0, 5000, 60_000])),
    traceparent: () => newTraceparent(),
    'Stitch-Sender': () => `fuzz-${rng.int(4)}`,
    'Stitch-Idempotency-Key': () => `key-${rng.int(50)}`,
  };
  const odd = ['', '-1', '0', 'NaN', 'Infinity', '1e308', '4294967296', ':::', 'a:b:c', ' ', '00-zz-zz-01'];
  const r = rng.next();
  if (r < 0.6) return (valid[name] ?? (() => ''))();
  if (r < 0.85) return mutateText(rng, (valid[name] ?? (() => ''))());
  if (r < 0.95) return rng.pick(odd);
  return rng.text(rng.chance(0.05) ? 5000 : 40);
}

/** A header set; values nats.js refuses (CR/LF) are sent with those characters removed. */
export function setHeader(h: MsgHdrs, name: string, value: string): void {
  try {
    h.set(name, value);
  } catch {
    try {
      h.set(name, value.replace(/[\r\n]/g, ''));
    } catch {
      // a value nats.js cannot send at all: the case goes without this header
    }
  }
}

/** 1-4 stitch headers with valid, mutated or random values (Stitch-Batch on one set in ten). */
export function stitchHeaders(rng: Rng, i: number): MsgHdrs {
  const h = natsHeaders();
  const n = 1 + rng.int(4);
  const names = rng.chance(0.1) ? STITCH_HEADERS : STITCH_HEADERS.filter((x) => x !== 'Stitch-Batch');
  for (let k = 0; k < n; k++) {
    const name = rng.pick(names);
    setHeader(h, name, headerValue(rng, name, i));
  }
  return h;
}

/** A valid coalesced batch of 2-5 items (replies to `<inbox>.<case>.<item>`), and its item count. */
export function validBatch(
  rng: Rng,
  scene: Scene,
  i: number,
): { data: Uint8Array; n: number; reply?: string } {
  const n = 2 + rng.int(4);
  const items: Parameters<typeof encodeRequests>[0] = [];
  for (let k = 0; k < n; k++) {
    items.push({
      reply: rng.chance(0.7) ? `${scene.inbox}.${i}.${k}` : undefined,
      traceparent: rng.chance(0.8) ? newTraceparent() : rng.text(20),
      deadline: rng.pick([Date.now() + 60_000, 0, Date.now() - 1000, Number.NaN]),
      key: rng.chance(0.3) ? `bk-${rng.int(100)}` : undefined,
      body: pickMessage(rng),
    });
  }
  const reply = items.find((x) => x.reply)?.reply;
  return { data: encodeRequests(items), n, ...(reply ? { reply } : {}) };
}

/** Seed messages of an edge: valid ones (the value edits start from these) and known-bad ones. */
export interface Corpus {
  valid: unknown[];
  invalid: unknown[];
}

export const controlCorpus = (scene: Scene): Corpus => ({
  valid: [
    { op: 'inspect' },
    { op: 'hosts', type: 'counter', id: scene.fuzzId },
    { op: 'hosts', type: 'counter', id: scene.checkId },
    { op: 'stop', type: 'counter', id: scene.fuzzId },
    { op: 'stop', type: 'counter', id: 'fz-1' },
    { op: 'inspect', extra: [1, 2, 3] },
    { op: 'fence', fence: { name: 'fuzz', epoch: 1 } },
    { op: 'take-drain', waitMs: 1000, fence: { name: 'fuzz', epoch: 2 } },
    { op: 'take-drain', waitMs: 0 },
    { op: 'undrain' },
    { op: 'migrate', type: 'counter', id: scene.fuzzId, to: 'fz-nowhere' },
  ],
  invalid: [
    { op: 'stop', type: 'nosuch', id: 'x' },
    { op: 'bogus', type: 'counter', id: scene.fuzzId },
    { op: 'take-drain', waitMs: -1 },
    { op: 'take-drain', waitMs: 2 ** 53 },
    // A valid drain is left out: it is an authorised command, and the node would take no new actors.
    { op: 'drain', timeoutMs: 0 },
    { op: 'drain', timeoutMs: 2 ** 53 },
    { op: 'drain', timeoutMs: '10' },
    { op: 'fence', fence: { name: 'a.b', epoch: 0 } },
    { op: 'migrate', type: 'counter', id: scene.fuzzId, to: '>' },
  ],
});

/**
 * Live-migration requests to the node's handoff subject, as a source node sends them: a few migration
 * ids, so that a `begin` is often followed by the steps of the same migration; Counters the checked
 * one is never among (a forged move is a trust question: with auth only nodes publish there).
 */
export const handoffCorpus = (scene: Scene): Corpus => {
  const pulls = [{ inbox: `stitch.${scene.cluster}.pull.fz1`, keepMs: 6000 }];
  const item = { b: encode({ type: 'add', by: 1 }), s: 'fuzz-0', t: '', d: Number.POSITIVE_INFINITY, q: 1 };
  return {
    valid: [
      { op: 'begin', migration: 'fm-1', type: 'counter', id: 'fz-h1' },
      { op: 'begin', migration: 'fm-2', type: 'counter', id: 'fz-h2', fromRecord: true },
      { op: 'begin', migration: 'fm-3', type: 'counter', id: 'fz-h3', pulls },
      { op: 'begin', migration: 'fm-4', type: 'counter', id: scene.fuzzId },
      { op: 'state', migration: 'fm-1', total: 16, offset: 0, data: new Uint8Array(16) },
      { op: 'state', migration: 'fm-2', total: 8, offset: 4, data: new Uint8Array(4), fromRecord: true },
      { op: 'change', migration: 'fm-1', total: 8, offset: 0, data: new Uint8Array(8) },
      { op: 'commit', migration: 'fm-1', total: 0, epoch: 1, revision: 1, recordRevision: 0 },
      {
        op: 'commit',
        migration: 'fm-3',
        total: 0,
        epoch: 2,
        revision: 3,
        recordRevision: 0,
        durable: true,
        merge: true,
        pulls,
        ran: [['fuzz-0', 1]],
        committed: [[1, 3]],
      },
      { op: 'early', migration: 'fm-1', items: [item] },
      { op: 'forward', migration: 'fm-3', items: [item], durable: true },
      { op: 'done', migration: 'fm-1', items: [] },
      { op: 'abort', migration: 'fm-2' },
      { op: 'abort', migration: 'fm-3' },
    ],
    invalid: [
      { op: 'bogus', migration: 'fm-1' },
      { op: 'state', migration: 'fm-1', total: 2 ** 40, offset: 0, data: new Uint8Array(1) },
      { op: 'begin', migration: 'fm-5', type: 'nosuch', id: 'x' },
      { op: 'begin', migration: 'fm-5', type: 'counter', id: 'fz-h5', pulls: [{ inbox: '>', keepMs: 1 }] },
      { op: 'forward', migration: 'fm-1', items: [{ ...item, j: '$JS.ACK.x' }] },
    ],
  };
};

/**
 * Whether a control payload is a valid `stop` of the checked Counter: such cases are left out (an
 * authorised stop is not hostile input, and it would make the exact-count check meaningless).
 */
export function stopsChecked(data: Uint8Array, scene: Scene): boolean {
  try {
    const v = decode(data) as { op?: unknown; id?: unknown } | null;
    return v?.op === 'stop' && v.id === scene.checkId;
  } catch {
    return false;
  }
}

export const activationCorpus = (scene: Scene): Corpus => ({
  valid: [
    { type: 'counter', id: 'fz-1' },
    { type: 'counter', id: 'fz-2' },
    { type: 'counter', id: scene.fuzzId },
    { type: 'counter', id: scene.checkId },
  ],
  invalid: [
    { type: 'nosuch', id: 'fz-1' },
    { type: 'counter', id: 'has space' },
    { type: 'counter' },
    { id: 'fz-3' },
  ],
});

/** Random bytes (1 in 10), a seed as is (valid or not, 1 in 10), or value edits of a valid seed keeping `keep`. */
export function corpusCase(rng: Rng, corpus: Corpus, keep: readonly string[]): Uint8Array {
  const r = rng.next();
  if (r < 0.1) return rng.bytes(rng.int(48));
  if (r < 0.2) return encode(rng.pick([...corpus.valid, ...corpus.invalid]));
  return valueCase(rng, corpus.valid, encode, keep);
}

/** Membership events as the runtime sends them (as JSON), about made-up nodes. */
export function membershipCorpus(rng: Rng): unknown[] {
  return ['join', 'leave', 'dead', 'other'].map((kind) => ({
    kind,
    nodeId: `ghost-${rng.int(5)}`,
    revision: rng.int(1000),
    at: Date.now(),
  }));
}

/** JSON bytes of a value (`undefined` as `null`). */
export const jsonBytes = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v ?? null));

/**
 * Whether a membership payload is a leave/dead event about the node under test: left out, as a
 * forged obituary of a live node is a trust question (test/coordinator-forged-membership.test.ts),
 * not a parser one.
 */
export function obituaryOf(data: Uint8Array, nodeId: string): boolean {
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as { kind?: unknown; nodeId?: unknown } | null;
    return (v?.kind === 'leave' || v?.kind === 'dead') && v.nodeId === nodeId;
  } catch {
    return false;
  }
}

const KEY_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=/';

/** A valid KV key: dot-separated tokens, sometimes shaped like `<type>.<id>`. */
export function kvKey(rng: Rng): string {
  if (rng.chance(0.4))
    return `${rng.pick(['counter', 'nosuch', 'x'])}.${rng.pick(['fz-1', 'fz-2', 'k'])}${rng.int(20)}`;
  const tokens = 1 + rng.int(3);
  const out: string[] = [];
  for (let t = 0; t < tokens; t++) {
    let s = '';
    const n = 1 + rng.int(12);
    for (let c = 0; c < n; c++) s += KEY_CHARS[rng.int(KEY_CHARS.length)];
    out.push(s);
  }
  return out.join('.');
}
