import { type ActorContext, defineActor } from '@stitch/runtime';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { batchLimits } from './llm.js';
import { configureEpoch, validateOpConfig } from './op-config.js';
import {
  type Context,
  type OpActor,
  type OpConfig,
  type OpReply,
  type OpStream,
  prepareOp,
  runOp,
  streamItems,
} from './ops.js';
import { splitMessage } from './parallel-split.js';
import { PARTIAL_OPS } from './streaming.js';
import { inSpan } from './tracing.js';
import { vectorOperator } from './vector-operator.js';

export type { OpReply } from './ops.js';

export interface OperatorState {
  config: OpConfig | undefined;
  /** Effects applied (one per distinct request). */
  applied: number;
  /** Retried deliveries answered from the record instead of applied again. */
  replays: number;
  /** Recent request ids with their replies, so a retry after a migration is not applied twice. */
  seen: Map<string, OpReply>;
  /** Estimated bytes of `seen`. */
  seenBytes: number;
  /** The newest coordinator epoch a `configure` carried (0: none yet); see configureEpoch. */
  configEpoch: number;
}

/** Replies remembered per operator; more than the requests in flight at any time. */
const KEEP = 256;
/** …and their bytes at most: a voice agent's replies carry audio (about 32 KB a second). */
const KEEP_BYTES = 16 * 1024 * 1024;

/** Rough size of a reply: its strings and byte arrays, which is where the bulk is. */
function sizeOf(v: unknown, depth = 0): number {
  if (typeof v === 'string') return v.length;
  if (v instanceof Uint8Array) return v.byteLength;
  if (typeof v !== 'object' || v === null || depth > 4) return 8;
  let n = 8;
  for (const x of Array.isArray(v) ? v : Object.values(v)) n += sizeOf(x, depth + 1);
  return n;
}

/** Records a reply for retries, forgetting the oldest past KEEP replies or KEEP_BYTES. */
function remember(s: OperatorState, rid: string, reply: OpReply): void {
  s.seen.set(rid, reply);
  s.seenBytes += sizeOf(reply);
  while (s.seen.size > KEEP || (s.seenBytes > KEEP_BYTES && s.seen.size > 1)) {
    const [oldest, r] = s.seen.entries().next().value!;
    s.seen.delete(oldest);
    s.seenBytes -= sizeOf(r);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isTimings(v: unknown): v is Record<string, number> {
  return typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'number');
}

function configured(s: OperatorState, actx: ActorContext): OpConfig {
  if (s.config) return s.config;
  throw new AgentsError(
    AgentsErrorCode.OpNotConfigured,
    `operator ${actx.self.type}/${actx.self.id} has no configuration; the coordinator sends "configure" after spawning it`,
  );
}

/**
 * The op's output for a prefix of a streamed input (the runner asks while tokens arrive): not
 * recorded, no effect, so it needs no idempotency; only ops in PARTIAL_OPS answer it.
 */
async function partial(s: OperatorState, msg: { ctx: Context }, actx: ActorContext): Promise<Context> {
  const cfg = configured(s, actx);
  if (!PARTIAL_OPS.has(cfg.op))
    throw new AgentsError(AgentsErrorCode.OpUnknown, `op ${cfg.op} gives no partial results`);
  if (typeof msg.ctx !== 'object' || msg.ctx === null || Array.isArray(msg.ctx))
    throw new AgentsError(AgentsErrorCode.RequestFailed, 'partial needs ctx: an object');
  return runOp(cfg, msg.ctx, '');
}

/** What an op needs of its actor to ask others (the ranks and groups of a split). */
const opActor = (actx: ActorContext): OpActor => ({
  self: { type: actx.self.type, id: actx.self.id },
  ref: (data) => actx.ref(data),
});

/** A split's rank's or group's work for a request under way (see parallel-split.ts). */
function split(s: OperatorState, msg: Record<string, unknown>, actx: ActorContext): Promise<unknown> {
  const cfg = configured(s, actx);
  return splitMessage(cfg.op, cfg.attrs, msg, opActor(actx));
}

/**
 * The recorded reply of a request this operator already ran: what a caller asks for when the
 * runtime's duplicate record kept only "applied" (a reply over its size limit, such as speech).
 */
function result(s: OperatorState, msg: { rid: string }): OpReply {
  const done = typeof msg.rid === 'string' ? s.seen.get(msg.rid) : undefined;
  if (!done)
    throw new AgentsError(
      AgentsErrorCode.RequestFailed,
      `no recorded reply for request ${String(msg.rid).slice(0, 64)}: it did not run here, or its reply was forgotten (${KEEP} replies, ${KEEP_BYTES} bytes are kept)`,
    );
  s.replays++;
  return { ...done, replay: true };
}

async function run(
  s: OperatorState,
  msg: { rid: string; ctx: Context },
  actx: ActorContext,
): Promise<OpReply> {
  const cfg = configured(s, actx);
  const done = s.seen.get(msg.rid);
  if (done) {
    s.replays++;
    return { ...done, replay: true };
  }
  // The device's slots are shared by every op on it: a busy device queues the work (its capacity is
  // finite). Right after a move the op may run where its configured device is not, until the
  // coordinator's configure names the new one: it then runs without a slot rather than fail.
  // A batched real decode takes no slot per request: its step loop is the device's one user.
  const batched = cfg.op === 'llm.decode' && !cfg.modelled && batchLimits().maxBatch > 1;
  const release = batched ? () => undefined : await actx.acquireSlot(cfg.device).catch(() => () => undefined);
  const t0 = performance.now();
  let out: Context;
  let computeMs: number;
  try {
    // Asked with ref.stream(): an op that streams (decode) sends its items as it makes them; on a
    // modelled device, spread over the predicted time as the device would make them.
    const stream = actx.stream && cfg.modelled ? pacedStream(actx.stream, cfg, t0) : actx.stream;
    // The op's own work (kernels, tools, engines) as a span inside the actor's turn.
    const attributes = { 'stitch.op': cfg.op, 'stitch.device': cfg.device, 'stitch.modelled': cfg.modelled };
    out = await inSpan(
      `compute ${cfg.op}`,
      attributes,
      (_span, traceparent) =>
        runOp(cfg, msg.ctx ?? {}, msg.rid, stream, {
          ...opActor(actx),
          ...(traceparent ? { traceparent } : {}),
        }),
      actx.traceparent,
    );
    computeMs = performance.now() - t0;
    // A modelled device takes the predicted time; the host computed the output meanwhile.
    if (cfg.modelled && computeMs < cfg.estimatedMs) await sleep(cfg.estimatedMs - computeMs);
  } finally {
    release();
  }
  // An op's own timings go in the reply, not on to the ops after it.
  const { $timings: timings, ...rest } = out;
  out = rest;
  const reply: OpReply = {
    ...(isTimings(timings) ? { timings } : {}),
    out,
    ms: cfg.modelled ? cfg.estimatedMs : computeMs,
    computeMs,
    device: cfg.modelled ? `virtual:${cfg.device}` : cfg.device,
    modelled: cfg.modelled,
    node: actx.nodeId,
    replay: false,
  };
  s.applied++;
  remember(s, msg.rid, reply);
  return reply;
}

/**
 * A modelled op's stream: item k goes out no sooner than (k + 1)/n of the predicted time after the
 * start (n: the items the op will make), so its first item and the pace of the rest are the
 * modelled device's, not the host's.
 */
function pacedStream(stream: OpStream, cfg: OpConfig, t0: number): OpStream {
  const n = Math.max(1, streamItems(cfg));
  let k = 0;
  return {
    signal: stream.signal,
    async write(item) {
      const due = t0 + (cfg.estimatedMs * ++k) / n - performance.now();
      if (due > 0) await sleep(due);
      return stream.write(item);
    },
  };
}

function operatorActor(kind: string, concurrency = 1) {
  return defineActor({
    type: `op-${kind}`,
    concurrency,
    // Configuring loads the model and compiles its kernels (seconds on a cold cache): not demand.
    setupHandlers: ['configure'],
    init: (): OperatorState => ({
      config: undefined,
      applied: 0,
      replays: 0,
      seen: new Map(),
      seenBytes: 0,
      configEpoch: 0,
    }),
    handlers: {
      configure: async (s: OperatorState, msg: { config: OpConfig; epoch?: number }) => {
        // Checked before anything is opened or loaded: the message may come from anyone on the bus.
        const config = validateOpConfig(msg.config);
        configureEpoch(msg.epoch, s.configEpoch);
        await prepareOp(config);
        // Again: a newer leader's configure may have run while this one loaded (concurrent LLM ops).
        s.configEpoch = configureEpoch(msg.epoch, s.configEpoch);
        s.config = config;
        return { applied: s.applied };
      },
      run,
      result,
      partial,
      split,
      counts: (s: OperatorState) => ({ applied: s.applied, replays: s.replays, config: s.config }),
    },
    snapshot: (s: OperatorState) => ({
      config: s.config,
      applied: s.applied,
      replays: s.replays,
      seen: [...s.seen],
      configEpoch: s.configEpoch,
    }),
    restore: (snap: unknown): OperatorState => {
      const v = snap as {
        config?: OpConfig;
        applied: number;
        replays: number;
        seen: [string, OpReply][];
        configEpoch?: number;
      };
      const seen = new Map(v.seen);
      let seenBytes = 0;
      for (const r of seen.values()) seenBytes += sizeOf(r);
      return {
        config: v.config,
        applied: v.applied,
        replays: v.replays,
        seen,
        seenBytes,
        configEpoch: v.configEpoch ?? 0,
      };
    },
  });
}

/** Operator actor types, one per op kind of the IR (`op-<kind>`); nodes load them by module. */
export const agentOperator = operatorActor('agent');
// With continuous batching on (STITCH_LLM_MAX_BATCH > 1) the LLM ops take requests concurrently, so
// that decode's batcher sees them all and admits (or refuses) them by its KV slots.
const llmLimits = batchLimits();
export const llmOperator = operatorActor(
  'llm',
  llmLimits.maxBatch > 1 ? llmLimits.maxSequences + llmLimits.maxQueued : 1,
);
export const kvOperator = operatorActor('kv');
export const toolOperator = operatorActor('tool');
export const memoryOperator = operatorActor('memory');
export const textOperator = operatorActor('text');
export const nnOperator = operatorActor('nn');

export const OPERATOR_ACTORS = [
  agentOperator,
  llmOperator,
  kvOperator,
  toolOperator,
  memoryOperator,
  textOperator,
  nnOperator,
  vectorOperator,
];

export function operatorType(kind: string): string {
  return `op-${kind}`;
}
