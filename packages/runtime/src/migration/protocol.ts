import { runsOf } from '../actor/committed-seqs.js';
import { ackInfo } from '../actor/durable-delivery.js';
import { TOKEN } from '../cluster/names.js';
import { InvalidOptions } from '../errors.js';
import { validReplySubject } from '../wire/envelope.js';
import type { ShippedRecord } from './image.js';

/**
 * The live-migration protocol, source node → target node on the target's handoff subject. Each step
 * is a request the target answers before the source goes on: `begin` (the target checks it can host
 * the actor, reads its persisted record, on a cluster subscribes to the pull inboxes it names, and
 * answers what it reads, BeginAnswer) → `state` (parts of
 * the snapshot image: the whole image while the source serves, then the blocks that changed; none
 * while it serves when the target built the image from the actor's record, then the blocks that
 * differ from that record) or, for an actor with delta hooks, `change` (parts of one encoded
 * change; the target builds the state from the image at the first and applies each whole change in
 * order; a `state` part after that starts the image afresh) → `commit` (with the last changed parts
 * or the last change: the target moves the directory epoch and starts the actor, holding what
 * reaches it directly unless it follows a message the source ran, named per sender in `ran`, and
 * durable messages, read from the source's pull inboxes it takes over in `pulls` and its own pulls)
 * → `done` (the last messages that reached the source, durable ones with their acknowledgement
 * subjects; the target releases what it held). From the pause until the source has stopped
 * receiving, what reaches the paused source goes on as it comes in `early` requests: queued by the
 * target first once it commits, or at once after; `forward` carries what was left when the source
 * stopped. `abort` drops a migration that has not committed.
 */
export type HandoffRequest =
  | {
      op: 'begin';
      migration: string;
      type: string;
      id: string;
      /** The source holds its record's snapshot in chunks and can send what differs from it (BeginAnswer.record). */
      fromRecord?: boolean;
      /**
       * On a cluster: the inboxes the actor's consumer pulls on now, which the commit will likely hand
       * over (its `pulls`). A target that may read them subscribes at once, so that its interest has
       * reached the consumer's leader by the commit and the grace period is mostly over; what comes
       * there before the commit is the source's, which reads it too.
       */
      pulls?: PullInbox[];
    }
  | {
      op: 'state';
      migration: string;
      total: number;
      offset: number;
      data: Uint8Array;
      /** A part of what differs from the record's snapshot (see the commit's `fromRecord`). */
      fromRecord?: boolean;
    }
  | { op: 'change'; migration: string; total: number; offset: number; data: Uint8Array }
  | {
      op: 'commit';
      migration: string;
      total: number;
      epoch: number;
      revision: number;
      recordRevision: number;
      /** The record written at recordRevision, as stored, when it fits (the target loads it, not reads it). */
      record?: Uint8Array;
      /** With `record`: chunks it names that the target may not have read, by name (see ShippedRecord). */
      recordChunks?: [string, Uint8Array][];
      /** With `record`: outcome blocks sealed since the target may have read it, as stored (see ShippedRecord). */
      recordBlocks?: Uint8Array[];
      /**
       * The actor has had durable messages: the target makes its consumer while the directory moves
       * rather than after (absent: true). Without them that work would only slow the compare-and-set.
       */
      durable?: boolean;
      /**
       * The inboxes the actor's consumer may still answer pulls on (the target's `begin` answered
       * `pulls`): the target reads them from before the directory moves, reads the consumer as it is
       * instead of making it afresh, and holds durable messages until `done` (the source forwards
       * those it got first, with their acknowledgement subjects).
       */
      pulls?: PullInbox[];
      /**
       * The source waits out a grace period around its unsubscribe (servers in a cluster): the target
       * holds forwarded messages with those that reach it directly, and runs them all in each
       * sender's order (Stitch-Seq) at `done`.
       */
      merge?: boolean;
      /** The last changed part of the image, when it fits in this message (one round trip less). */
      part?: { offset: number; data: Uint8Array };
      /**
       * The last changed parts of the image that fit in this message (a target whose `begin` answered
       * `{ parts: true }`): a state changed in several places is then sent without a round trip more.
       */
      parts?: { offset: number; data: Uint8Array }[];
      /** The last change (delta hooks), encoded, when it fits in this message. */
      change?: Uint8Array;
      /**
       * Per sender, the count (Stitch-Seq) of its last message to this actor that the source ran, for
       * the senders it knows (at most MAX_SENDER_COUNTS): a message that reaches the target directly
       * after one of these (its Stitch-Prev) runs at once instead of waiting for `done`.
       */
      ran?: [string, number][];
      /**
       * Stream sequences of durable messages the source committed above its consumer's ack floor, as
       * runs `[first, count]` (at most MAX_COMMITTED_RUNS, MAX_COMMITTED_SEQS in all): one whose
       * acknowledgement was lost reaches the target's fresh consumer, which skips it.
       */
      committed?: [number, number][];
      /**
       * No image was copied (BeginAnswer.record): the changed parts are those of the image against
       * the snapshot of the record at `recordRevision`, whose chunks are these. The target builds the
       * image from that record, then applies the parts.
       */
      fromRecord?: string[];
    }
  | { op: 'early'; migration: string; items: ForwardedMessage[] }
  | {
      op: 'forward';
      migration: string;
      items: ForwardedMessage[];
      /**
       * The last of the durable messages a source that handed its pulls over held (it reads them no
       * more): the target runs its durable messages from here on, not at `done`.
       */
      durable?: true;
    }
  | { op: 'done'; migration: string; items: ForwardedMessage[] }
  | { op: 'abort'; migration: string };

/**
 * An inbox a durable consumer may still answer pulls on, handed over by a migration's source: a pull
 * cannot be cancelled, and lasts up to its expiry. The target reads it for `keepMs`.
 */
export interface PullInbox {
  inbox: string;
  keepMs: number;
}

/** Whether every one of `pulls` is under `prefix` (those a target may read: BeginAnswer.pulls). */
export function pullsUnder(pulls: PullInbox[], prefix: string): boolean {
  return prefix.length > 0 && pulls.every((p) => p.inbox.startsWith(`${prefix}.`));
}

/** Pull inboxes one commit hands over, at most (see PullInbox). */
export const MAX_PULL_INBOXES = 64;

/** What a target answers to `begin`: the protocol's optional parts it reads. */
export interface BeginAnswer {
  /** It reads `parts` on the commit. */
  parts?: boolean;
  /**
   * It takes over the source's pulls on inboxes under this prefix (the commit's `pulls`), those its
   * connection may subscribe to.
   */
  pulls?: string;
  /**
   * Asked to (`begin`'s fromRecord), it read the actor's record, whose snapshot is stored in chunks,
   * and built an image from it: the source need not copy its image, only what differs from the record.
   */
  record?: boolean;
}

/** Chunk names a commit's `fromRecord` lists, at most (a 16 GiB snapshot in 256 KiB chunks). */
export const MAX_RECORD_CHUNKS = 65_536;

/** Image parts riding on one commit, at most (each is a range the pause found changed). */
export const MAX_COMMIT_PARTS = 4096;

/** Outcome blocks riding on one commit, at most. */
export const MAX_RECORD_BLOCKS = 4096;

/** Runs a commit's `committed` lists, and sequences in them all, at most. */
export const MAX_COMMITTED_RUNS = 8192;
export const MAX_COMMITTED_SEQS = 1 << 17;

/** Senders a commit's `ran` lists, at most. */
export const MAX_SENDER_COUNTS = 1024;

/** A forwarded message's bytes besides its body (sender, reply subject, traceparent, deadline, key). */
export const FORWARD_ROOM = 256;

/** A fast-mode message the source had accepted but not run, as the target queues it. */
export interface ForwardedMessage {
  /** The message, encoded. */
  b: Uint8Array;
  /** Sender id (per-sender limits and order). */
  s: string;
  /** Reply subject, when the caller waits for one. */
  r?: string;
  /** W3C traceparent. */
  t: string;
  /** Deadline, ms since the epoch (the clock the sender used). */
  d: number;
  /** Idempotency key. */
  k?: string;
  /** The sender's message count (Stitch-Seq), when it sent one. */
  q?: number;
  /** The count of the sender's previous message to this actor (Stitch-Prev), when it sent one. */
  p?: number;
  /** An item of a coalesced message but its last (Envelope.more). */
  m?: true;
  /**
   * A durable message's acknowledgement subject (a commit that handed its pulls over): the target
   * runs it as a durable message, in stream order with those its pulls bring.
   */
  j?: string;
}

const str = (v: unknown, what: string, max = 1024): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw new InvalidOptions(`handoff ${what} must be a non-empty string`);
  return v;
};
const count = (v: unknown, what: string): number => {
  if (!Number.isSafeInteger(v) || (v as number) < 0)
    throw new InvalidOptions(`handoff ${what} must be an integer ≥ 0`);
  return v as number;
};
const token = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !TOKEN.test(v)) throw new InvalidOptions(`handoff ${what} is not a token`);
  return v;
};

function forwarded(v: unknown): ForwardedMessage {
  const f = v as Partial<ForwardedMessage> | null;
  if (typeof f !== 'object' || f === null || !(f.b instanceof Uint8Array))
    throw new InvalidOptions('a forwarded message needs its encoded body');
  // One no subscription can have (a wildcard, a space) gets no reply, as at the source.
  const reply = validReplySubject(typeof f.r === 'string' ? f.r : undefined);
  return {
    b: f.b,
    s: str(f.s, 'sender', 256),
    t: typeof f.t === 'string' ? f.t : '',
    d: typeof f.d === 'number' ? f.d : Number.POSITIVE_INFINITY,
    ...(reply !== undefined ? { r: reply } : {}),
    ...(f.k !== undefined ? { k: str(f.k, 'idempotency key') } : {}),
    ...(f.q !== undefined ? { q: count(f.q, 'message count') } : {}),
    ...(f.q !== undefined && f.p !== undefined && count(f.p, 'previous count') < (f.q as number)
      ? { p: f.p }
      : {}),
    ...(f.m === true ? { m: true as const } : {}),
    ...(f.j !== undefined ? { j: ackSubject(f.j) } : {}),
  };
}

function ackSubject(v: unknown): string {
  if (!ackInfo(typeof v === 'string' && v.length <= 1024 ? v : undefined))
    throw new InvalidOptions('a forwarded durable message needs its JetStream acknowledgement subject');
  return v as string;
}

function pullInboxes(v: unknown, op: 'begin' | 'commit'): PullInbox[] {
  if (!Array.isArray(v) || v.length > MAX_PULL_INBOXES)
    throw new InvalidOptions(`a ${op}'s pulls are a list of at most ${MAX_PULL_INBOXES} { inbox, keepMs }`);
  return v.map((p) => {
    const e = p as Partial<PullInbox> | null;
    const inbox = validReplySubject(typeof e?.inbox === 'string' ? e.inbox : undefined);
    if (inbox === undefined) throw new InvalidOptions(`a ${op} pulls entry needs an inbox subject`);
    const keepMs = count(e?.keepMs, 'pull keepMs');
    if (keepMs > MAX_PULL_KEEP_MS)
      throw new InvalidOptions(`a ${op} pulls entry is kept at most ${MAX_PULL_KEEP_MS} ms`);
    return { inbox, keepMs };
  });
}

/** How long a handed-over pull inbox is read, at most: a pull's own expiry is seconds. */
const MAX_PULL_KEEP_MS = 10 * 60_000;

function senderCounts(v: unknown): [string, number][] {
  if (!Array.isArray(v) || v.length > MAX_SENDER_COUNTS)
    throw new InvalidOptions(
      `a commit's ran is a list of at most ${MAX_SENDER_COUNTS} [sender, count] pairs`,
    );
  return v.map((e) => {
    if (!Array.isArray(e) || e.length !== 2)
      throw new InvalidOptions('a commit ran entry is [sender, count]');
    return [str(e[0], 'sender', 256), count(e[1], 'message count')];
  });
}

function committedRuns(v: unknown): [number, number][] {
  const runs = runsOf(v, MAX_COMMITTED_RUNS, MAX_COMMITTED_SEQS);
  if (!runs)
    throw new InvalidOptions(
      `a commit's committed is a list of at most ${MAX_COMMITTED_RUNS} [first, count] runs of stream sequences, ${MAX_COMMITTED_SEQS} in all`,
    );
  return runs;
}

function recordChunks(v: unknown): [string, Uint8Array][] {
  if (!Array.isArray(v) || v.length > MAX_RECORD_CHUNKS)
    throw new InvalidOptions(`a commit's recordChunks are a list of at most ${MAX_RECORD_CHUNKS}`);
  return v.map((e) => {
    if (!Array.isArray(e) || e.length !== 2 || !(e[1] instanceof Uint8Array))
      throw new InvalidOptions('a commit recordChunks entry is [name, bytes]');
    return [str(e[0], 'chunk name', 256), e[1]];
  });
}

function recordBlocks(v: unknown): Uint8Array[] {
  if (!Array.isArray(v) || v.length > MAX_RECORD_BLOCKS || !v.every((b) => b instanceof Uint8Array))
    throw new InvalidOptions(
      `a commit's recordBlocks are a list of at most ${MAX_RECORD_BLOCKS} byte strings`,
    );
  return v;
}

/** The record a commit carries, with its chunks and blocks; undefined when it carries none. */
export function shippedRecord(
  commit: Pick<Extract<HandoffRequest, { op: 'commit' }>, 'record' | 'recordChunks' | 'recordBlocks'>,
): ShippedRecord | undefined {
  if (!commit.record) return undefined;
  return {
    record: commit.record,
    ...(commit.recordChunks ? { chunks: commit.recordChunks } : {}),
    ...(commit.recordBlocks ? { blocks: commit.recordBlocks } : {}),
  };
}

function imagePart(v: unknown): { offset: number; data: Uint8Array } {
  const p = v as { offset?: unknown; data?: unknown } | null;
  if (typeof p !== 'object' || p === null || !(p.data instanceof Uint8Array))
    throw new InvalidOptions('a commit part needs its bytes');
  return { offset: count(p.offset, 'offset'), data: p.data };
}

/** Checks a request anyone allowed on the subject could have sent; throws InvalidOptions when malformed. */
export function parseHandoff(v: unknown): HandoffRequest {
  const r = v as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null) throw new InvalidOptions('a handoff request is an object');
  const migration = token(r.migration, 'migration id');
  switch (r.op) {
    case 'begin':
      return {
        op: 'begin',
        migration,
        type: token(r.type, 'actor type'),
        id: token(r.id, 'actor id'),
        ...(r.fromRecord === true ? { fromRecord: true } : {}),
        ...(r.pulls !== undefined ? { pulls: pullInboxes(r.pulls, 'begin') } : {}),
      };
    case 'state':
    case 'change':
      if (!(r.data instanceof Uint8Array)) throw new InvalidOptions(`handoff ${r.op} needs its bytes`);
      return {
        op: r.op,
        migration,
        total: count(r.total, 'total'),
        offset: count(r.offset, 'offset'),
        data: r.data,
        ...(r.op === 'state' && r.fromRecord === true ? { fromRecord: true } : {}),
      } as HandoffRequest;
    case 'commit': {
      const part = r.part === undefined ? undefined : imagePart(r.part);
      if (r.parts !== undefined && (!Array.isArray(r.parts) || r.parts.length > MAX_COMMIT_PARTS))
        throw new InvalidOptions(`a commit's parts are a list of at most ${MAX_COMMIT_PARTS}`);
      const list = r.parts === undefined ? undefined : (r.parts as unknown[]).map(imagePart);
      if (r.change !== undefined && !(r.change instanceof Uint8Array))
        throw new InvalidOptions('a commit change is bytes');
      if (r.record !== undefined && !(r.record instanceof Uint8Array))
        throw new InvalidOptions('a commit record is bytes');
      if (
        r.fromRecord !== undefined &&
        (!Array.isArray(r.fromRecord) ||
          r.fromRecord.length > MAX_RECORD_CHUNKS ||
          !r.fromRecord.every((n) => typeof n === 'string' && n.length <= 256))
      )
        throw new InvalidOptions(
          `a commit's fromRecord is a list of at most ${MAX_RECORD_CHUNKS} chunk names`,
        );
      return {
        op: 'commit',
        migration,
        total: count(r.total, 'total'),
        epoch: count(r.epoch, 'epoch'),
        revision: count(r.revision, 'revision'),
        recordRevision: count(r.recordRevision, 'record revision'),
        durable: r.durable !== false,
        merge: r.merge === true,
        ...(part ? { part } : {}),
        ...(list ? { parts: list } : {}),
        ...(r.change !== undefined ? { change: r.change as Uint8Array } : {}),
        ...(r.record !== undefined ? { record: r.record as Uint8Array } : {}),
        ...(r.record !== undefined && r.recordChunks !== undefined
          ? { recordChunks: recordChunks(r.recordChunks) }
          : {}),
        ...(r.record !== undefined && r.recordBlocks !== undefined
          ? { recordBlocks: recordBlocks(r.recordBlocks) }
          : {}),
        ...(r.fromRecord !== undefined ? { fromRecord: r.fromRecord as string[] } : {}),
        ...(r.ran !== undefined ? { ran: senderCounts(r.ran) } : {}),
        ...(r.committed !== undefined ? { committed: committedRuns(r.committed) } : {}),
        ...(r.pulls !== undefined ? { pulls: pullInboxes(r.pulls, 'commit') } : {}),
      };
    }
    case 'early':
    case 'forward':
    case 'done':
      if (!Array.isArray(r.items)) throw new InvalidOptions(`handoff ${r.op} needs its items`);
      return {
        op: r.op,
        migration,
        items: r.items.map(forwarded),
        ...(r.op === 'forward' && r.durable === true ? { durable: true as const } : {}),
      } as HandoffRequest;
    case 'abort':
      return { op: 'abort', migration };
    default:
      throw new InvalidOptions(
        `unknown handoff op ${JSON.stringify(r.op)}; use begin, state, change, commit, early, forward, done or abort`,
      );
  }
}
