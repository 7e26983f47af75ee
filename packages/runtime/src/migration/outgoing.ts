import { nuid } from '@nats-io/transport-node';
import type { Claim } from '../cluster/directory.js';
import { forwardDurable, sendEarly, sendForwarded } from './forwarding.js';
import type { ShippedRecord } from './image.js';
import {
  type Copied,
  type PauseChange,
  pauseChange,
  precopy,
  releaseCopy,
  type TargetAnswer,
} from './precopy.js';
import { type BeginAnswer, FORWARD_ROOM, MAX_COMMITTED_RUNS, type PullInbox } from './protocol.js';
import {
  ask,
  ENVELOPE_ROOM,
  type Migratable,
  type MigrationContext,
  type MigrationReport,
  type Move,
  moveFailed,
  PART_ROOM,
} from './source.js';

/** A run of the commit's `committed`, encoded, at most: two uint64 and the array's header. */
const COMMITTED_RUN_BYTES = 19;

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
  const move: Move = { ctx, a, to, migration: nuid.next(), partBytes: ctx.maxPayload - ENVELOPE_ROOM };
  const t0 = performance.now();
  // The target reads the record at `begin` or later: what the commit ships is what was written since.
  const recordBefore = a.recordMark();
  const takeCommitted = committedForMove(a);
  const target = await begin(move);
  const abort = () => ask(move, { op: 'abort', migration: move.migration }).catch(() => undefined);
  let copied: Copied;
  let claim: Claim | undefined;
  try {
    copied = await precopy(move, target);
    claim = await ctx.currentClaim();
  } catch (err) {
    await abort();
    throw moveFailed(move, 'pre-copy', err);
  }
  if (!claim) {
    await abort();
    throw moveFailed(move, 'pre-copy', new Error(`node ${ctx.nodeId} no longer holds the directory entry`));
  }
  const precopyMs = performance.now() - t0;

  const paused = performance.now();
  const pulls = await a.pause(a.hadDurable() ? target.pullPrefix : undefined);
  const settled = performance.now();
  // Who the source ran messages from, up to where: the target runs what follows them without waiting for `done`.
  const ran = a.ran();
  // The oldest runs that fit a quarter of the commit (the rest of it is the state's): a lost
  // acknowledgement holds the ack floor just below its message, and the target's record knows the
  // latest keys.
  const committedRuns = takeCommitted().slice(
    0,
    Math.min(MAX_COMMITTED_RUNS, Math.floor(move.partBytes / 4 / COMMITTED_RUN_BYTES)),
  );
  const riding =
    ran.reduce((n, [sender]) => n + sender.length + PART_ROOM, 0) +
    committedRuns.length * COMMITTED_RUN_BYTES;
  let change: PauseChange;
  try {
    change = await pauseChange(move, copied, target.ridesParts, riding);
  } catch (err) {
    await abort();
    await a.resume();
    throw moveFailed(move, 'delta', err);
  }
  const early = sendEarly(move);
  // The record the pause just wrote rides on the commit when there is room, with the chunks and outcome
  // blocks written since `begin`: the target then loads them instead of reading them back (round
  // trips to the bucket in the pause).
  const shipped = a.shippedRecord(recordBefore, move.partBytes - change.riding);
  const committing = performance.now();
  const { epoch, pullsHeldMs, targetCommitMs, directoryMs } = await commit(
    move,
    { claim, pulls, ran, committedRuns, change, shipped },
    async () => {
      // What went early stays queued here: the abort drops the target's copies.
      await early.stop();
      await abort();
      await a.resume();
    },
  );
  const committed = performance.now();
  early.committed();
  // Durable messages first: once the target's interest in the pulls reached the consumer's leader,
  // the source has every one that came only to it, and the target runs them without waiting for the
  // fast-mode hand-off's end.
  const pullsStopped = pulls ? await forwardDurable(move, pullsHeldMs) : 0;
  // The source stops receiving at once; until the server has taken that, what still reaches it goes
  // on to the target as it comes (the target owns the actor and runs it in each sender's order).
  await a.stopReceiving(ctx.graceMs, pullsStopped);
  // A request that got no answer may have run there: its callers are answered Overloaded, to send again.
  const { sent: sentEarly, stillQueued, unsure } = await early.stop();
  const stopped = performance.now();
  const rest = a.takeQueued(move.partBytes - FORWARD_ROOM, stillQueued + unsure.length);
  a.bounce(unsure);
  a.retire();
  releaseCopy(copied);
  // The target owns the actor: callers of what it did not take hear at once rather than wait for
  // their timeout (a batch whose answer was lost may have run there: send again with an idempotency key).
  await sendForwarded(
    move,
    rest,
    'done',
    'messages that reached the source during a migration were not forwarded',
  );
  const end = performance.now();
  return {
    actor: a.key,
    from: ctx.nodeId,
    to,
    epoch,
    stateBytes: change.total,
    precopyMs,
    pausedMs: committed - paused,
    settleMs: settled - paused,
    commitMs: committed - committing,
    ...(targetCommitMs !== undefined ? { targetCommitMs } : {}),
    ...(directoryMs !== undefined ? { directoryMs } : {}),
    handoffMs: end - paused,
    stopReceivingMs: stopped - committed,
    forwardMs: end - stopped,
    deltaBytes: change.deltaBytes,
    changeRounds: copied.changeRounds,
    forwarded: sentEarly + rest.length,
    imageFromRecord: copied.fromRecord,
    pullsHandedOver: pulls?.length ?? 0,
    pullsHeldMs,
  };
}

/**
 * The actor's committed durable messages for the commit, read while the pre-copy runs: the pause
 * takes them only if they are there by then (see the commit's `committed`).
 */
function committedForMove(a: Migratable): () => [number, number][] {
  let take: (() => [number, number][]) | undefined;
  if (a.hadDurable())
    a.committedForMove().then(
      (t) => {
        take = t;
      },
      () => undefined,
    );
  return () => take?.() ?? [];
}

/** Asks the target to begin the move; resolves with what it says it can do. */
async function begin(move: Move): Promise<TargetAnswer> {
  const { ctx, a } = move;
  // Only with a grace period to shorten: on one server the target would read a copy of every durable
  // message during the copy for nothing (downtime p50 1–2 ms longer there on a 2-vCPU VM).
  const watchPulls = ctx.graceMs > 0 && a.hadDurable() ? a.pullInboxes() : undefined;
  try {
    const begun = (await ask(move, {
      op: 'begin',
      migration: move.migration,
      type: a.type,
      id: a.id,
      // Without delta hooks the pause compares images: against the record's when this node holds it.
      ...(!a.changes && a.recordImage() ? { fromRecord: true } : {}),
      // The target's interest in them then reaches the consumer's leader during the copy, not in the
      // pause: the grace period before the durable forward is mostly over by the commit.
      ...(watchPulls ? { pulls: watchPulls } : {}),
    })) as BeginAnswer | null;
    const prefix = begun?.pulls;
    return {
      ridesParts: begun?.parts === true,
      holdsRecord: begun?.record === true,
      pullPrefix: typeof prefix === 'string' && prefix.length > 0 ? prefix : undefined,
    };
  } catch (err) {
    // Unanswered in time, the begin may still be waiting for a place there, or preparing: not awaited,
    // as a target that did not answer the begin may not answer this either.
    void ask(move, { op: 'abort', migration: move.migration }).catch(() => undefined);
    throw moveFailed(move, 'begin', err);
  }
}

/** What the commit carries besides the state's last change. */
interface CommitContents {
  claim: Claim;
  pulls: PullInbox[] | undefined;
  ran: [string, number][];
  committedRuns: [number, number][];
  change: PauseChange;
  shipped: ShippedRecord | undefined;
}

/** What the target's answer to the commit says. */
interface CommitAnswer {
  epoch: number;
  pullsHeldMs: number;
  targetCommitMs?: number;
  directoryMs?: number;
}

/** A duration the target reports, when it is one. */
const durationOf = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : undefined);

/**
 * Asks the target to commit: it moves the directory entry to itself and starts the actor. Resolves
 * with the actor's epoch there, how long the target had read the pulls handed over, and how long its
 * side of the commit and the directory's compare-and-set took. No answer does not mean no commit:
 * rewriting the entry decides. Once it is rewritten the target's compare-and-set cannot succeed any
 * more, and the move fails after `rollBack`; when the rewrite fails, the target holds the entry.
 */
async function commit(move: Move, c: CommitContents, rollBack: () => Promise<void>): Promise<CommitAnswer> {
  const { ctx, a } = move;
  try {
    const r = (await ask(move, {
      op: 'commit',
      migration: move.migration,
      total: c.change.total,
      epoch: c.claim.epoch,
      revision: c.claim.revision,
      recordRevision: a.recordRevision(),
      ...(c.shipped ? { record: c.shipped.record } : {}),
      ...(c.shipped?.chunks ? { recordChunks: c.shipped.chunks } : {}),
      ...(c.shipped?.blocks ? { recordBlocks: c.shipped.blocks } : {}),
      durable: a.hadDurable(),
      merge: ctx.graceMs > 0,
      ...(c.ran.length > 0 ? { ran: c.ran } : {}),
      ...(c.committedRuns.length > 0 ? { committed: c.committedRuns } : {}),
      ...(c.pulls ? { pulls: c.pulls } : {}),
      ...c.change.last,
    })) as { epoch?: unknown; pullsHeldMs?: unknown; workMs?: unknown; directoryMs?: unknown };
    if (typeof r?.epoch !== 'number') throw new Error('the target answered the commit without an epoch');
    // How long the target had read the pulls handed over (see forwardDurable).
    const held = typeof r.pullsHeldMs === 'number' && r.pullsHeldMs > 0 ? r.pullsHeldMs : 0;
    const targetCommitMs = durationOf(r.workMs);
    const directoryMs = durationOf(r.directoryMs);
    return {
      epoch: r.epoch,
      pullsHeldMs: held,
      ...(targetCommitMs !== undefined ? { targetCommitMs } : {}),
      ...(directoryMs !== undefined ? { directoryMs } : {}),
    };
  } catch (err) {
    if (await ctx.fenceClaim(c.claim).catch(() => false)) {
      await rollBack();
      throw moveFailed(move, 'commit', err);
    }
    ctx.log('migration commit unanswered, but the target holds the actor', { actor: a.key, to: move.to });
    return { epoch: c.claim.epoch + 1, pullsHeldMs: 0 };
  }
}
