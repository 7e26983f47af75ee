import type { ImageBytes } from '../wire/image.js';
import { BlockDigests } from './block-digests.js';
import { changedRanges, IMAGE_BLOCK_BYTES, parts } from './image.js';
import { MAX_COMMIT_PARTS } from './protocol.js';
import { ask, ENVELOPE_ROOM, type Migratable, type Move, PART_ROOM, type StateMark } from './source.js';

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

/**
 * Sends the ranges of `bytes` (an image, or one change) the target lacks, `WINDOW` parts in flight;
 * resolves with the bytes sent. `keep`: what is sent is copied there too, or digested by block;
 * `fromRecord`: the parts are what differs from the record's snapshot (the target applies them once
 * it holds that record).
 */
async function sendParts(
  move: Move,
  op: 'state' | 'change',
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
      const req = { op, migration: move.migration, total: bytes.length, offset: start, data };
      await ask(move, fromRecord ? { ...req, op: 'state', fromRecord } : req, into);
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

/** What the target said at `begin` it can do. */
export interface TargetAnswer {
  /** It reads every part riding on the commit (`parts`), not only one (`part`). */
  ridesParts: boolean;
  /** It read the actor's record and holds its snapshot: the image may come from there. */
  holdsRecord: boolean;
  /** It may read pull inboxes under this prefix: the pause hands the consumer's pulls over. */
  pullPrefix: string | undefined;
}

/** What the pre-copy sent, for the pause to send what changed since. */
export interface Copied {
  /** The image copied, or its blocks' digests, when the pause compares images (no delta hooks). */
  copy: Uint8Array | undefined;
  digests: BlockDigests | undefined;
  /**
   * Nothing copied: the target built the image from the actor's record, and the pause sends what
   * differs from the record's snapshot (a durable actor's state is stored already: copying it again
   * would cost its size in transfer and in a copy kept here).
   */
  fromRecord: boolean;
  /** The image's size. */
  total: number;
  /** Delta hooks: the state as the target has it (undefined: the pause compares images). */
  mark: StateMark;
  changeRounds: number;
}

/** Sends the whole of `bytes` in parts of `size`, WINDOW in flight (see sendParts). */
function sendWhole(
  move: Move,
  op: 'state' | 'change',
  bytes: ImageBytes,
  size: number,
  keep?: Uint8Array | BlockDigests,
): Promise<number> {
  const todo: [number, number][] = bytes.length > 0 ? parts([[0, bytes.length]], size) : [];
  return sendParts(move, op, bytes, todo, keep ? { keep } : {});
}

/**
 * Copies the actor's state to the target while it serves: with delta hooks the image and then rounds
 * of changes until what is left is small enough for the pause; else the image, kept as a copy (up to
 * DIGESTS_ABOVE_BYTES) or as block digests for the pause to compare with; or nothing, when the target
 * holds the actor's record and the state is near it.
 */
export async function precopy(move: Move, target: TargetAnswer): Promise<Copied> {
  const { a, ctx, partBytes } = move;
  const copied: Copied = {
    copy: undefined,
    digests: undefined,
    fromRecord: false,
    total: 0,
    mark: undefined,
    changeRounds: 0,
  };
  if (a.changes) {
    const begun = a.changes.begin();
    copied.mark = begun.mark;
    copied.total = begun.image.length;
    await sendWhole(move, 'state', begun.image, precopyPartBytes(begun.image.length, partBytes));
    // Rounds while the actor serves, until what changed meanwhile is small enough for the pause.
    for (; copied.changeRounds < MAX_CHANGE_ROUNDS; copied.changeRounds++) {
      const next = a.changes.since(copied.mark);
      if (!next) {
        copied.mark = undefined;
        break;
      }
      if (next.change.length <= ctx.maxPauseChangeBytes) break;
      await sendWhole(move, 'change', next.change, precopyPartBytes(next.change.length, partBytes));
      copied.mark = next.mark;
    }
    return copied;
  }
  if (target.holdsRecord && nearRecord(a, partBytes)) {
    copied.fromRecord = true;
    return copied;
  }
  const image = a.image();
  copied.total = image?.length ?? 0;
  if (image instanceof Uint8Array) {
    copied.copy = image;
    await sendWhole(move, 'state', image, precopyPartBytes(image.length, partBytes));
  } else if (image && image.length > DIGESTS_ABOVE_BYTES && partBytes >= IMAGE_BLOCK_BYTES) {
    // Parts of whole blocks, each digested as it goes.
    const size = precopyPartBytes(image.length, partBytes);
    copied.digests = new BlockDigests();
    const blocks = Math.max(IMAGE_BLOCK_BYTES, size - (size % IMAGE_BLOCK_BYTES));
    await sendWhole(move, 'state', image, blocks, copied.digests);
  } else if (image) {
    // Read while the actor serves, each part as it goes: a copy of what went is all that is made.
    copied.copy = takeCopyBuffer(image.length);
    await sendWhole(move, 'state', image, precopyPartBytes(image.length, partBytes), copied.copy);
  }
  return copied;
}

/** The last of the state, riding on the commit: parts of the image, or one change. */
export interface LastOfState {
  part?: { offset: number; data: Uint8Array };
  parts?: { offset: number; data: Uint8Array }[];
  change?: Uint8Array;
  /** The record's chunks the parts differ from (the target checks it holds that record). */
  fromRecord?: string[];
}

/** What the pause sends of the state: `last` rides on the commit, which now carries `riding` bytes. */
export interface PauseChange {
  last: LastOfState;
  /** Bytes sent in the pause. */
  deltaBytes: number;
  /** The image's size. */
  total: number;
  riding: number;
}

/**
 * In the pause: sends what changed since the pre-copy (the last change, or the parts of the image that
 * differ from what was copied or from the record's snapshot) and leaves the last of it, as much as
 * fits beside the `riding` bytes the commit carries already, to ride on the commit: a state changed in
 * a few places then costs no round trip more.
 */
export async function pauseChange(
  move: Move,
  copied: Copied,
  ridesParts: boolean,
  riding: number,
): Promise<PauseChange> {
  const { a, partBytes } = move;
  const final = copied.mark !== undefined ? a.changes?.since(copied.mark) : undefined;
  if (final) {
    const deltaBytes = final.change.length;
    if (riding + deltaBytes <= partBytes)
      return { last: { change: final.change }, deltaBytes, total: copied.total, riding: riding + deltaBytes };
    await sendWhole(move, 'change', final.change, partBytes);
    return { last: {}, deltaBytes, total: copied.total, riding };
  }
  const image = a.image();
  const total = image?.length ?? 0;
  if (!image) return { last: {}, deltaBytes: 0, total, riding };
  const last: LastOfState = {};
  // Against the record's snapshot when the target built the image from it (its chunk names go with
  // the commit, for the target to check it has that record). Without an image copied or a record
  // (delta hooks: the target got a live one, or applied changes to it and dropped it), the target
  // gets the whole image again.
  const base = copied.fromRecord ? a.recordImage() : undefined;
  if (base) {
    last.fromRecord = base.names;
    riding += base.names.reduce((n, name) => n + name.length + PART_ROOM, 0);
  }
  const todo = parts(
    copied.digests && !base
      ? await copied.digests.changedRanges(image)
      : changedRanges(base ?? copied.copy, image),
    partBytes,
  );
  // As many parts as fit (one, for a target that reads only `part`).
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
  const sent = await sendParts(move, 'state', image, todo, { fromRecord: base !== undefined });
  return { last, deltaBytes: sent + data.reduce((n, p) => n + p.data.length, 0), total, riding };
}

/** The move is over: its copy of the image may serve the next one (see takeCopyBuffer). */
export function releaseCopy(copied: Copied): void {
  keepCopyBuffer(copied.copy);
}
