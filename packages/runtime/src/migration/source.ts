import type { NatsConnection } from '@nats-io/transport-node';
import type { Claim } from '../cluster/directory.js';
import { MigrationFailed, rebuildError } from '../errors.js';
import { decode, encode, encodeInto } from '../wire/codec.js';
import { H } from '../wire/envelope.js';
import type { ImageBytes } from '../wire/image.js';
import type { RecordImage, RecordMark, ShippedRecord } from './image.js';
import type { ForwardedMessage, HandoffRequest, PullInbox } from './protocol.js';

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
  /**
   * Part of pausedMs: from the pause until the actor was at a turn boundary with every durable effect
   * committed and no save in flight.
   */
  settleMs: number;
  /**
   * Part of pausedMs, its last: the commit's round trip, from the request sent until the target's
   * answer (the rest of pausedMs is the last change: built, and sent ahead when it does not fit the
   * commit).
   */
  commitMs: number;
  /**
   * Part of commitMs, as the target measured it: its own work on the commit (the last change applied,
   * the state built, the directory entry moved, the inboxes opened). Undefined when its answer was lost.
   */
  targetCommitMs?: number;
  /** Part of targetCommitMs: the directory entry's compare-and-set, a write to the directory's bucket. */
  directoryMs?: number;
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

/** Room for the request's fields around a part's bytes. */
export const ENVELOPE_ROOM = 1024;
/** Room for one part's own fields in a list of parts riding on the commit. */
export const PART_ROOM = 16;

/** One migration as its source drives it: what each of its requests to the target goes with. */
export interface Move {
  readonly ctx: MigrationContext;
  readonly a: Migratable;
  readonly to: string;
  readonly migration: string;
  /** The most bytes of state, or of messages, one request carries: max_payload less ENVELOPE_ROOM. */
  readonly partBytes: number;
}

/** Asks the target one step of the move; a refusal rejects with the target's typed error. */
export async function ask(move: Move, req: HandoffRequest, into?: Buffer): Promise<unknown> {
  const { ctx } = move;
  const data = into ? encodeInto(req, into) : encode(req);
  const reply = await ctx.nc.request(ctx.handoffSubject(move.to), data, { timeout: ctx.timeoutMs });
  const code = reply.headers?.get(H.errorCode);
  if (code) throw rebuildError(code, reply.headers?.get(H.errorName) ?? 'Error', reply.string());
  return decode(reply.data);
}

/** What the move rejects with when its step `step` failed: the source still owns the actor. */
export function moveFailed(move: Move, step: string, err: unknown): MigrationFailed {
  return new MigrationFailed(move.a.key, step, (err as Error).message ?? String(err), { cause: err });
}
