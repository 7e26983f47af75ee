import { type NatsConnection, nuid } from '@nats-io/transport-node';
import type { Claim } from '../cluster/directory.js';
import { MigrationFailed, rebuildError } from '../errors.js';
import { decode, encode, encodeInto } from '../wire/codec.js';
import { H } from '../wire/envelope.js';
import type { ImageBytes } from '../wire/image.js';
import { BlockDigests } from './block-digests.js';
import {
  changedRanges,
  IMAGE_BLOCK_BYTES,
  parts,
  type RecordImage,
  type RecordMark,
  type ShippedRecord,
} from './image.js';
import {
  type BeginAnswer,
  FORWARD_ROOM,
  type ForwardedMessage,
  type HandoffRequest,
  MAX_COMMIT_PARTS,
  MAX_COMMITTED_RUNS,
  type PullInbox,
} from './protocol.js';

/** What a live migration measured, from the source's side. */
export interface MigrationReport {
  actor: string;
  from: string;
  to: string;
  /** The actor's directory epoch on the target. */
  epoch: number;
  /** Size of the snapshot image handed over. */
  stateBytes: number;
  /** Copying the image while the source kept serving. */
  precopyMs: number;
  /** From the pause at a turn boundary until the target owned the actor (messages waited meanwhile). */
  pausedMs: number;
  /** From the pause until the target had every message that reached the source. */
  handoffMs: number;
  /**
   * Part of handoffMs: from the commit's answer until the source no longer received and what it had
   * sent early was answered (the durable messages it held forwarded first, when it handed its pulls
   * over).
   */
  stopReceivingMs: number;
  /** Part of handoffMs: from then until the target confirmed the rest of the messages, forwarded. */
  forwardMs: number;
  /** Bytes sent during the pause (the blocks that changed since the pre-copy, or the last change). */
  deltaBytes: number;
  /** Changes sent while the actor served (delta hooks; 0 without them). */
  changeRounds: number;
  /** Messages that reached the source during the hand-off and went on to the target. */
  forwarded: number;
  /**
   * The target built the image from the actor's persisted record (stored in chunks): no image was
   * copied, and the pause sent what differs from the record.
   */
  imageFromRecord: boolean;
  /**
   * Pull inboxes of the durable consumer handed over to the target, which read the consumer as it
   * was; 0 when it made the consumer afresh (or the actor had no durable messages).
   */
  pullsHandedOver: number;
  /**
   * How long the target had read those inboxes when it answered the commit: on a cluster it
   * subscribes at `begin`, and the grace period before the durable messages are forwarded counts from
   * there. 0 when none were handed over.
   */
  pullsHeldMs: number;
}

/** An activation's state named at one instant (delta hooks): compared later to say what changed. */
export type StateMark = unknown;

/** The delta hooks as a migration drives them; every image and change is encoded. */
export interface MigratableChanges {
  /**
   * The snapshot image and the mark of the state, taken at the same instant; the image's large arrays
   * are read as it is sent (later changes may show in it: the changes since the mark correct it).
   */
  begin(): { image: ImageBytes; mark: StateMark };
  /** What changed since `mark` and the mark of now; undefined when the actor cannot tell (compare images). */
  since(mark: StateMark): { change: Uint8Array; mark: StateMark } | undefined;
}

/** The source activation, as a migration drives it. */
export interface Migratable {
  readonly key: string;
  readonly type: string;
  readonly id: string;
  /**
   * The activation's snapshot image now: an encoding (taken after every turn), or an image that reads
   * the state's large arrays as it is read (on demand); undefined when it has none.
   */
  image(): ImageBytes | undefined;
  /** Present when the actor has delta hooks: then changes go instead of image blocks. */
  readonly changes: MigratableChanges | undefined;
  /**
   * The snapshot of the persisted record at recordRevision() when it is stored in chunks that this
   * activation holds (an actor that snapshots on demand, once it has written or read its record): its
   * bytes and its chunks' names.
   */
  recordImage(): RecordImage | undefined;
  /** Revision of the actor's persisted record as this activation last wrote or read it. */
  recordRevision(): number;
  /** The persisted record as this activation last read or wrote it (see StateRecord.mark). */
  recordMark(): RecordMark;
  /**
   * The record it wrote at recordRevision(), as stored, with what it wrote since `since`, as much as
   * fits `maxBytes` (see StateRecord.shipment); undefined when it did not write that revision.
   */
  shippedRecord(since: RecordMark, maxBytes: number): ShippedRecord | undefined;
  /** Whether the actor has had durable messages (here, or where it was before). */
  hadDurable(): boolean;
  /** The inboxes its durable consumer's pulls may be answered on now (see DurableInbox.pullInboxes). */
  pullInboxes(): PullInbox[] | undefined;
  /** While paused: per sender, the count of its last message that ran here (the commit's `ran`). */
  ran(): [string, number][];
  /** Its committed durable messages for the commit (see DurableInbox.committedForMove). */
  committedForMove(): Promise<() => [number, number][]>;
  /**
   * Stops at a turn boundary: nothing runs, durable effects are committed, no periodic save runs.
   * With `pullPrefix` (the target takes over pulls on inboxes under it), hands the durable consumer's
   * pulls over when it can and resolves with them (see the commit's `pulls`); durable messages not run
   * are then forwarded like the rest.
   */
  pause(pullPrefix?: string): Promise<PullInbox[] | undefined>;
  /** Undoes pause(): the migration failed before the directory moved. */
  resume(): Promise<void>;
  /**
   * While paused: the fast-mode messages queued, in order, from the `from`-th on, as many as fit
   * `maxBytes` with their room; they stay queued.
   */
  queued(from: number, maxBytes: number): ForwardedMessage[];
  /** After the commit: drops the first `count` fast-mode messages queued (the target has them). */
  dropQueued(count: number): void;
  /** While paused: `listener` hears of each fast-mode message queued (undefined: no one does). */
  onQueued(listener: (() => void) | undefined): void;
  /**
   * After the directory moved: stops receiving, `graceMs` from now; resolves once the server has taken
   * the unsubscribe (nothing more arrives). Messages that arrive until then are queued, as while paused.
   */
  stopReceiving(graceMs: number, waitedMs: number): Promise<void>;
  /**
   * After the directory moved, when the pause handed the durable consumer's pulls over: waits
   * `graceMs`, stops reading them and takes the durable messages not run, in order, with their
   * acknowledgement subjects (none otherwise); one over `maxBytes` goes back to the stream.
   */
  stopPulling(graceMs: number, maxBytes: number): Promise<ForwardedMessage[]>;
  /**
   * Takes the fast-mode messages not run, in order, but for the first `skip` queued (the target has
   * them); nothing stays queued (a durable one goes back to the stream: see stopPulling). One whose
   * body is over `maxBytes` (it came in chunks) cannot be forwarded in one request: its caller is
   * answered Overloaded, to send it again.
   */
  takeQueued(maxBytes: number, skip: number): ForwardedMessage[];
  /** Answers the callers of messages the target did not take: Overloaded, to send them again. */
  bounce(items: ForwardedMessage[]): void;
  /** Forgets the activation here (the target owns it). */
  retire(): void;
}

export interface MigrationContext {
  nc: NatsConnection;
  nodeId: string;
  handoffSubject: (nodeId: string) => string;
  /** The directory entry as stored now, if this node holds it. */
  currentClaim: () => Promise<Claim | undefined>;
  /** Writes the held entry again (a new revision), so that a commit the target may still apply fails. */
  fenceClaim: (claim: Claim) => Promise<boolean>;
  maxPayload: number;
  /** A change (delta hooks) at most this large waits for the pause; a larger one goes while the actor serves. */
  maxPauseChangeBytes: number;
  /** After the commit, the source receives this long before it unsubscribes (NodeOptions.migrationGraceMs). */
  graceMs: number;
  timeoutMs: number;
  log: (msg: string, fields: Record<string, unknown>) => void;
}

/** Largest copy of an image kept between moves (see takeCopyBuffer). */
const KEPT_COPY_MAX_BYTES = 4 * 1024 * 1024;
let keptCopy: ArrayBuffer | undefined;

/**
 * A buffer of `n` bytes for the copy of an outgoing image: the one the last move in this process
 * used, when large enough, else a new one. A megabyte array allocated per move drove V8 to a full
 * collection at nearly every move (1 MiB on demand: 31-32 in 44 moves; reused, 15-22), whose pauses
 * make the slowest hand-offs (gap p50 6.1 → 5.5 ms, p99 18.6 → 16.6 ms, medians of 5 and 7 runs).
 */
function takeCopyBuffer(n: number): Uint8Array {
  const kept = keptCopy;
  keptCopy = undefined;
  return kept && kept.byteLength >= n ? new Uint8Array(kept, 0, n) : new Uint8Array(n);
}

/** Keeps a copy buffer nothing reads any more for the next move, when small enough. */
function keepCopyBuffer(copy: Uint8Array | undefined): void {
  if (copy && copy.buffer.byteLength <= KEPT_COPY_MAX_BYTES) keptCopy = copy.buffer as ArrayBuffer;
}

/**
 * Larger images are compared at the pause by block digests (BlockDigests) rather than with a copy of
 * what was sent: a copy is kept between moves only up to this size, and above it each move would
 * allocate one as large as the state.
 */
const DIGESTS_ABOVE_BYTES = KEPT_COPY_MAX_BYTES;

/** Requests in flight while the image is copied. */
const WINDOW = 8;
/**
 * Largest part of an image or change sent while the actor serves. The copy shares the node's
 * connection with every reply its actors send, and each waits behind the bytes the copy has in
 * flight: at 16 MiB, 8 parts of 1 MiB gave callers a 37-41 ms median gap during the move, 8 of 256 KiB
 * 16-20 ms, for a pre-copy 30-45 % longer (`bench/README.md`). Parts sent in the pause are as large as a
 * message allows: then nothing else waits.
 */
const PRECOPY_PART_BYTES = 256 * 1024;
/**
 * Smallest part sent while the actor serves: with its envelope it fits a 64 KiB socket read, which
 * nats.js often hands over without assembling it in buffers of its own. Images up to about 2 MiB go
 * in such parts (at 1 MiB with delta hooks, p99 gaps 8-14 ms against 17-20 ms in parts of 256 KiB,
 * five runs each), larger ones in parts of 1/32 of the image up to PRECOPY_PART_BYTES, where fewer
 * round trips shorten the copy.
 */
const PRECOPY_MIN_PART_BYTES = 60 * 1024;

/** The part size of a copy of `total` bytes while the actor serves: about 1/32 of it, within the bounds above. */
function precopyPartBytes(total: number, partBytes: number): number {
  const size = Math.ceil(total / 32 / 4096) * 4096;
  return Math.min(partBytes, PRECOPY_PART_BYTES, Math.max(PRECOPY_MIN_PART_BYTES, size));
}

/** Rounds of changes sent while the actor serves, at most, before it pauses anyway. */
const MAX_CHANGE_ROUNDS = 4;
/** Room for the request's fields around a part's bytes. */
const ENVELOPE_ROOM = 1024;
/** Room for one part's own fields in a list of parts riding on the commit. */
const PART_ROOM = 16;
/** A run of the commit's `committed`, encoded, at most: two uint64 and the array's header. */
const COMMITTED_RUN_BYTES = 19;

/**
 * From the pause until the source has stopped receiving, sends what reaches the paused source to the
 * target as it comes (`early`): before the commit the target queues it once its compare-and-set
 * succeeds, instead of a round trip later; after it, at once. Until the commit what went stays queued
 * here too (a failed commit resumes the source with it); from `committed` on, what the target has
 * confirmed is dropped here, so that the source's mailbox limits count only what is on its way while
 * it keeps receiving (a grace period: the target serves meanwhile, and callers send faster than while
 * it was paused). `stop` ends it and says how many messages the target has in all, how many of them
 * are still queued here, and those of a request that got no answer (the target may or may not have
 * them).
 */
function sendEarly(
  ctx: MigrationContext,
  a: Migratable,
  to: string,
  migration: string,
  bytes: number,
): {
  committed(): void;
  stop(): Promise<{ sent: number; stillQueued: number; unsure: ForwardedMessage[] }>;
} {
  let sent = 0;
  let dropped = 0;
  let committed = false;
  let unsure: ForwardedMessage[] = [];
  let stopped = false;
  let sending = false;
  let done = Promise.resolve();
  const drop = () => {
    a.dropQueued(sent - dropped);
    dropped = sent;
  };
  const pump = () => {
    if (sending || stopped || unsure.length > 0) return;
    sending = true;
    done = (async () => {
      while (!stopped) {
        const items = a.queued(sent - dropped, bytes);
        if (items.length === 0) break;
        try {
          await ask(ctx, to, { op: 'early', migration, items });
          sent += items.length;
          if (committed) drop();
        } catch {
          unsure = items;
          break;
        }
      }
      sending = false;
    })();
  };
  a.onQueued(pump);
  pump();
  return {
    committed() {
      committed = true;
      drop();
    },
    async stop() {
      stopped = true;
      a.onQueued(undefined);
      await done;
      return { sent, stillQueued: sent - dropped, unsure };
    },
  };
}

/** Messages in order, cut into batches of at most `bytes` each (takeQueued keeps larger ones back). */
function forwardBatches(items: ForwardedMessage[], bytes: number): ForwardedMessage[][] {
  const batches: ForwardedMessage[][] = [];
  let batch: ForwardedMessage[] = [];
  let size = 0;
  for (const item of items) {
    const n = item.b.length + FORWARD_ROOM;
    if (batch.length > 0 && size + n > bytes) {
      batches.push(batch);
      batch = [];
      size = 0;
    }
    batch.push(item);
    size += n;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/**
 * After a commit that handed the durable consumer's pulls over: the source stops reading them once the
 * target has read them for the grace period (it had for `heldMs` when it answered the commit) and
 * forwards the durable messages it holds, the last batch saying so (the target then runs its durable
 * messages). Resolves with the time it took to stop; what the target did not take goes back to the
 * stream.
 */
async function forwardDurable(
  ctx: MigrationContext,
  a: Migratable,
  to: string,
  migration: string,
  partBytes: number,
  heldMs: number,
): Promise<number> {
  const t0 = performance.now();
  const items = await a.stopPulling(Math.max(0, ctx.graceMs - heldMs), partBytes - FORWARD_ROOM);
  const waited = performance.now() - t0;
  await sendForwarded(
    ctx,
    a,
    to,
    migration,
    items,
    partBytes,
    'durable',
    'durable messages that reached the source during a migration went back to the stream',
  );
  return waited;
}

/**
 * Sends `items` to the target in batches that fit a request, the last as `last` (`done`, or the
 * `forward` that says the durable messages are all there). What the target did not take is bounced
 * (see Migratable.bounce) and logged as `failed`.
 */
async function sendForwarded(
  ctx: MigrationContext,
  a: Migratable,
  to: string,
  migration: string,
  items: ForwardedMessage[],
  partBytes: number,
  last: 'done' | 'durable',
  failed: string,
): Promise<void> {
  const batches = forwardBatches(items, partBytes);
  if (batches.length === 0) batches.push([]);
  let sent = 0;
  try {
    for (; sent < batches.length - 1; sent++)
      await ask(ctx, to, { op: 'forward', migration, items: batches[sent]! });
    const final = batches[sent]!;
    await ask(
      ctx,
      to,
      last === 'done'
        ? { op: 'done', migration, items: final }
        : { op: 'forward', migration, items: final, durable: true },
    );
  } catch (err) {
    const left = batches.slice(sent).flat();
    a.bounce(left);
    ctx.log(failed, { actor: a.key, to, messages: left.length, error: String(err) });
  }
}

async function ask(ctx: MigrationContext, to: string, req: HandoffRequest, into?: Buffer): Promise<unknown> {
  const data = into ? encodeInto(req, into) : encode(req);
  const reply = await ctx.nc.request(ctx.handoffSubject(to), data, { timeout: ctx.timeoutMs });
  const code = reply.headers?.get(H.errorCode);
  if (code) throw rebuildError(code, reply.headers?.get(H.errorName) ?? 'Error', reply.string());
  return decode(reply.data);
}

/**
 * Sends the ranges of `bytes` (an image, or one change) the target lacks, `WINDOW` parts in flight;
 * resolves with the bytes sent. `keep`: what is sent is copied there too, or digested by block;
 * `fromRecord`: the parts are what differs from the record's snapshot (the target applies them once
 * it holds that record).
 */
async function sendParts(
  ctx: MigrationContext,
  to: string,
  op: 'state' | 'change',
  migration: string,
  bytes: ImageBytes,
  todo: [number, number][],
  { keep, fromRecord }: { keep?: Uint8Array | BlockDigests; fromRecord?: boolean } = {},
): Promise<number> {
  let next = 0;
  let sent = 0;
  // Each lane encodes its requests into a buffer of its own, used again once the part is answered (it
  // was written to the socket by then): encoded by msgpackr alone, each part was one more copy to
  // collect (at 16 MiB a move's extra memory at its median fell from 18-32 MB to 7-14, bench/README).
  let most = 0;
  for (const [start, end] of todo) most = Math.max(most, end - start);
  const lane = async () => {
    const into = Buffer.allocUnsafeSlow(most + ENVELOPE_ROOM);
    while (next < todo.length) {
      const [start, end] = todo[next++]!;
      let data = bytes.subarray(start, end);
      // A live image: what was sent is kept, for the pause to compare the state with (the digest is
      // of the bytes as they are now, as the request encoded below).
      if (keep instanceof BlockDigests) keep.add(start, data);
      else if (keep) {
        keep.set(data, start);
        data = keep.subarray(start, end);
      }
      const req = { op, migration, total: bytes.length, offset: start, data };
      await ask(ctx, to, fromRecord ? { ...req, op: 'state', fromRecord } : req, into);
      sent += data.length;
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, todo.length) }, lane));
  return sent;
}

/**
 * Whether the state differs from the record's snapshot in at most `bytes` (what one commit carries):
 * then the pause sends no more than a pre-copied move's would. A state that ran far ahead of its
 * record (fast-mode turns since the last save) is copied while it serves instead.
 */
function nearRecord(a: Migratable, bytes: number): boolean {
  const record = a.recordImage();
  const image = record && a.image();
  if (!record || !image) return false;
  let differing = 0;
  for (const [start, end] of changedRanges(record, image)) {
    differing += end - start;
    if (differing > bytes) return false;
  }
  return true;
}

/**
 * Moves an activation to node `to` while it keeps serving: its snapshot image is copied first, then
 * the activation stops at a turn boundary, the blocks that changed meanwhile follow, and the target
 * takes the directory entry over (compare-and-set on the source's revision, so it happens at most
 * once). Until then any failure resumes the source, which still owns the actor. Afterwards the source
 * stops receiving and forwards, in order, what reached it meanwhile; the target holds what reaches
 * it directly until those are queued, so each sender's order holds and nothing runs twice (the
 * actor's subject is a queue group: every message goes to exactly one of the two).
 */
export async function migrateActivation(
  ctx: MigrationContext,
  a: Migratable,
  to: string,
): Promise<MigrationReport> {
  const migration = nuid.next();
  const partBytes = ctx.maxPayload - ENVELOPE_ROOM;
  const failed = (step: string, err: unknown) =>
    new MigrationFailed(a.key, step, (err as Error).message ?? String(err), { cause: err });
  const t0 = performance.now();
  let ridesParts: boolean;
  let targetHoldsRecord: boolean;
  let pullPrefix: string | undefined;
  // The target reads the record at `begin` or later: what the commit ships is what was written since.
  const recordBefore = a.recordMark();
  // Read while the pre-copy runs; the pause takes it only if it is there by then (see the commit's `committed`).
  let takeCommitted: (() => [number, number][]) | undefined;
  if (a.hadDurable())
    a.committedForMove().then(
      (take) => {
        takeCommitted = take;
      },
      () => undefined,
    );
  // Only with a grace period to shorten: on one server the target would read a copy of every durable
  // message during the copy for nothing (downtime p50 1–2 ms longer there on a 2-vCPU VM).
  const watchPulls = ctx.graceMs > 0 && a.hadDurable() ? a.pullInboxes() : undefined;
  try {
    const begun = (await ask(ctx, to, {
      op: 'begin',
      migration,
      type: a.type,
      id: a.id,
      // Without delta hooks the pause compares images: against the record's when this node holds it.
      ...(!a.changes && a.recordImage() ? { fromRecord: true } : {}),
      // The target's interest in them then reaches the consumer's leader during the copy, not in the
      // pause: the grace period before the durable forward is mostly over by the commit.
      ...(watchPulls ? { pulls: watchPulls } : {}),
    })) as BeginAnswer | null;
    ridesParts = begun?.parts === true;
    targetHoldsRecord = begun?.record === true;
    pullPrefix = typeof begun?.pulls === 'string' && begun.pulls.length > 0 ? begun.pulls : undefined;
  } catch (err) {
    throw failed('begin', err);
  }
  const abort = () => ask(ctx, to, { op: 'abort', migration }).catch(() => undefined);
  const sendWhole = (
    op: 'state' | 'change',
    bytes: ImageBytes,
    size: number,
    keep?: Uint8Array | BlockDigests,
  ) =>
    sendParts(
      ctx,
      to,
      op,
      migration,
      bytes,
      bytes.length > 0 ? parts([[0, bytes.length]], size) : [],
      keep ? { keep } : {},
    );

  /** The image copied, or its blocks' digests, when the pause compares images (no delta hooks). */
  let copied: Uint8Array | undefined;
  let digests: BlockDigests | undefined;
  /**
   * Nothing copied: the target built the image from the actor's record, and the pause sends what
   * differs from the record's snapshot (a durable actor's state is stored already: copying it again
   * would cost its size in transfer and in a copy kept here).
   */
  let fromRecord = false;
  let total = 0;
  let mark: StateMark;
  let changeRounds = 0;
  let claim: Claim | undefined;
  try {
    if (a.changes) {
      const begun = a.changes.begin();
      mark = begun.mark;
      total = begun.image.length;
      await sendWhole('state', begun.image, precopyPartBytes(begun.image.length, partBytes));
      // Rounds while the actor serves, until what changed meanwhile is small enough for the pause.
      for (; changeRounds < MAX_CHANGE_ROUNDS; changeRounds++) {
        const next = a.changes.since(mark);
        if (!next) {
          mark = undefined;
          break;
        }
        if (next.change.length <= ctx.maxPauseChangeBytes) break;
        await sendWhole('change', next.change, precopyPartBytes(next.change.length, partBytes));
        ({ mark } = next);
      }
    } else if (targetHoldsRecord && nearRecord(a, partBytes)) {
      fromRecord = true;
    } else {
      const image = a.image();
      total = image?.length ?? 0;
      if (image instanceof Uint8Array) {
        copied = image;
        await sendWhole('state', image, precopyPartBytes(image.length, partBytes));
      } else if (image && image.length > DIGESTS_ABOVE_BYTES && partBytes >= IMAGE_BLOCK_BYTES) {
        // Parts of whole blocks, each digested as it goes.
        const size = precopyPartBytes(image.length, partBytes);
        digests = new BlockDigests();
        await sendWhole(
          'state',
          image,
          Math.max(IMAGE_BLOCK_BYTES, size - (size % IMAGE_BLOCK_BYTES)),
          digests,
        );
      } else if (image) {
        // Read while the actor serves, each part as it goes: a copy of what went is all that is made.
        copied = takeCopyBuffer(image.length);
        await sendWhole('state', image, precopyPartBytes(image.length, partBytes), copied);
      }
    }
    claim = await ctx.currentClaim();
  } catch (err) {
    await abort();
    throw failed('pre-copy', err);
  }
  if (!claim) {
    await abort();
    throw failed('pre-copy', new Error(`node ${ctx.nodeId} no longer holds the directory entry`));
  }
  const precopyMs = performance.now() - t0;

  const paused = performance.now();
  const pulls = await a.pause(a.hadDurable() ? pullPrefix : undefined);
  let deltaBytes = 0;
  let last: {
    part?: { offset: number; data: Uint8Array };
    parts?: { offset: number; data: Uint8Array }[];
    change?: Uint8Array;
    fromRecord?: string[];
  } = {};
  // Who the source ran messages from, up to where: the target runs what follows them without waiting for `done`.
  const ran = a.ran();
  let riding = ran.reduce((n, [sender]) => n + sender.length + PART_ROOM, 0);
  // The oldest runs that fit a quarter of the commit (the rest of it is the state's): a lost
  // acknowledgement holds the ack floor just below its message, and the target's record knows the
  // latest keys.
  const committedRuns = (takeCommitted?.() ?? []).slice(
    0,
    Math.min(MAX_COMMITTED_RUNS, Math.floor(partBytes / 4 / COMMITTED_RUN_BYTES)),
  );
  riding += committedRuns.length * COMMITTED_RUN_BYTES;
  try {
    const final = mark !== undefined ? a.changes?.since(mark) : undefined;
    if (final) {
      deltaBytes = final.change.length;
      if (riding + final.change.length <= partBytes) {
        last = { change: final.change };
        riding += final.change.length;
      } else await sendWhole('change', final.change, partBytes);
    } else {
      const image = a.image();
      total = image?.length ?? 0;
      if (image) {
        // Against the record's snapshot when the target built the image from it (its chunk names go
        // with the commit, for the target to check it has that record). Without an image copied or a
        // record (delta hooks: the target got a live one, or applied changes to it and dropped it),
        // the target gets the whole image again.
        const base = fromRecord ? a.recordImage() : undefined;
        if (base) {
          last.fromRecord = base.names;
          riding += base.names.reduce((n, name) => n + name.length + PART_ROOM, 0);
        }
        const todo = parts(
          digests && !base ? await digests.changedRanges(image) : changedRanges(base ?? copied, image),
          partBytes,
        );
        // The last parts ride on the commit, as many as fit in it (one, for a target that reads only
        // `part`): a state changed in a few places then costs no round trip more in the pause.
        const ride: [number, number][] = [];
        while (todo.length > 0 && (ride.length === 0 || (ridesParts && ride.length < MAX_COMMIT_PARTS))) {
          const [start, end] = todo[todo.length - 1]!;
          if ((ride.length > 0 || riding > 0) && riding + (end - start) + PART_ROOM > partBytes) break;
          ride.unshift(todo.pop()!);
          riding += end - start + PART_ROOM;
        }
        const data = ride.map(([start, end]) => ({ offset: start, data: image.subarray(start, end) }));
        if (ridesParts && data.length > 0) last.parts = data;
        else if (data[0]) last.part = data[0];
        deltaBytes =
          (await sendParts(ctx, to, 'state', migration, image, todo, { fromRecord: base !== undefined })) +
          data.reduce((n, p) => n + p.data.length, 0);
      }
    }
  } catch (err) {
    await abort();
    await a.resume();
    throw failed('delta', err);
  }
  const early = sendEarly(ctx, a, to, migration, partBytes);
  // The record the pause just wrote rides on the commit when there is room, with the chunks and outcome
  // blocks written since `begin`: the target then loads them instead of reading them back (round
  // trips to the bucket in the pause).
  const shipped = a.shippedRecord(recordBefore, partBytes - riding);
  let epoch: number;
  /** How long the target had read the pulls handed over when it answered the commit (see forwardDurable). */
  let pullsHeldMs = 0;
  try {
    const r = (await ask(ctx, to, {
      op: 'commit',
      migration,
      total,
      epoch: claim.epoch,
      revision: claim.revision,
      recordRevision: a.recordRevision(),
      ...(shipped ? { record: shipped.record } : {}),
      ...(shipped?.chunks ? { recordChunks: shipped.chunks } : {}),
      ...(shipped?.blocks ? { recordBlocks: shipped.blocks } : {}),
      durable: a.hadDurable(),
      merge: ctx.graceMs > 0,
      ...(ran.length > 0 ? { ran } : {}),
      ...(committedRuns.length > 0 ? { committed: committedRuns } : {}),
      ...(pulls ? { pulls } : {}),
      ...last,
    })) as { epoch?: unknown; pullsHeldMs?: unknown };
    if (typeof r?.epoch !== 'number') throw new Error('the target answered the commit without an epoch');
    epoch = r.epoch;
    if (typeof r.pullsHeldMs === 'number' && r.pullsHeldMs > 0) pullsHeldMs = r.pullsHeldMs;
  } catch (err) {
    // No answer does not mean no commit: rewriting the entry decides. Once it is rewritten the target's
    // compare-and-set cannot succeed any more; when the rewrite fails, the target holds the entry.
    if (await ctx.fenceClaim(claim).catch(() => false)) {
      // What went early stays queued here: the abort drops the target's copies.
      await early.stop();
      await abort();
      await a.resume();
      throw failed('commit', err);
    }
    epoch = claim.epoch + 1;
    ctx.log('migration commit unanswered, but the target holds the actor', { actor: a.key, to });
  }
  const committed = performance.now();
  early.committed();
  // Durable messages first: once the target's interest in the pulls reached the consumer's leader,
  // the source has every one that came only to it, and the target runs them without waiting for the
  // fast-mode hand-off's end.
  const pullsStopped = pulls ? await forwardDurable(ctx, a, to, migration, partBytes, pullsHeldMs) : 0;
  // The source stops receiving at once; until the server has taken that, what still reaches it goes
  // on to the target as it comes (the target owns the actor and runs it in each sender's order).
  await a.stopReceiving(ctx.graceMs, pullsStopped);
  // A request that got no answer may have run there: its callers are answered Overloaded, to send again.
  const { sent: sentEarly, stillQueued, unsure } = await early.stop();
  const stopped = performance.now();
  const rest = a.takeQueued(partBytes - FORWARD_ROOM, stillQueued + unsure.length);
  a.bounce(unsure);
  a.retire();
  keepCopyBuffer(copied);
  // The target owns the actor: callers of what it did not take hear at once rather than wait for
  // their timeout (a batch whose answer was lost may have run there: send again with an idempotency key).
  await sendForwarded(
    ctx,
    a,
    to,
    migration,
    rest,
    partBytes,
    'done',
    'messages that reached the source during a migration were not forwarded',
  );
  const end = performance.now();
  return {
    actor: a.key,
    from: ctx.nodeId,
    to,
    epoch,
    stateBytes: total,
    precopyMs,
    pausedMs: committed - paused,
    handoffMs: end - paused,
    stopReceivingMs: stopped - committed,
    forwardMs: end - stopped,
    deltaBytes,
    changeRounds,
    forwarded: sentEarly + rest.length,
    imageFromRecord: fromRecord,
    pullsHandedOver: pulls?.length ?? 0,
    pullsHeldMs,
  };
}
