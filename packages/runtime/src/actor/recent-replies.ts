import type { Clock } from '../clock.js';
import type { Outcome } from '../wire/outcome.js';

/**
 * How long a durable answer is kept to be sent again after a reconnect: the longest a broken
 * connection goes unnoticed (three missed pings, one a second) with a margin.
 */
const REPLAY_MS = 5000;
/** Answers kept at most, and their bytes: a burst keeps the latest. */
const MAX_REPLIES = 10_000;
const MAX_BYTES = 16 * 1024 * 1024;
/** Answers are copied into slabs of this size (one larger answer gets a slab of its own). */
const SLAB_BYTES = 256 * 1024;

type Sender = { send(subject: string, out: Outcome): void };

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** Writes `subject` as UTF-8 at `at`, returning its bytes (subjects are ASCII but for rare ones). */
function writeSubject(subject: string, to: Uint8Array, at: number): number {
  for (let i = 0; i < subject.length; i++) {
    const c = subject.charCodeAt(i);
    if (c > 127) return utf8.encodeInto(subject, to.subarray(at)).written;
    to[at + i] = c;
  }
  return subject.length;
}

/**
 * The durable answers a node sent lately. Core NATS is at most once: an answer written to the socket
 * as the connection broke is gone with it, and its caller would wait out its timeout. Once the
 * connection is back the node sends the answers of the last REPLAY_MS again; a caller that has its
 * answer already ignores the repeat.
 *
 * Every durable answer passes through here, so keeping one allocates nothing per answer: its subject
 * and bytes are copied into append-only slabs and indexed in a ring of typed arrays (an object per
 * answer, kept for seconds, cost a durable actor ≈ 10 % of its CPU in garbage collection). A slab is
 * released once no answer kept is in it. Failures (rare) are kept as they are.
 */
export class RecentReplies {
  readonly #clock: Clock;
  // The ring: entry i of the n kept is at (#head + i) % MAX_REPLIES.
  readonly #at = new Float64Array(MAX_REPLIES);
  readonly #offset = new Uint32Array(MAX_REPLIES);
  readonly #subjectBytes = new Uint32Array(MAX_REPLIES);
  readonly #dataBytes = new Uint32Array(MAX_REPLIES);
  readonly #slab: (Uint8Array | undefined)[] = new Array(MAX_REPLIES).fill(undefined);
  readonly #sender: (Sender | undefined)[] = new Array(MAX_REPLIES).fill(undefined);
  readonly #failure: (Outcome | undefined)[] = new Array(MAX_REPLIES).fill(undefined);
  #head = 0;
  #count = 0;
  #bytes = 0;
  #current: Uint8Array | undefined;
  #used = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#count;
  }

  note(sender: Sender, subject: string, reply: Outcome): void {
    // Room for the subject's UTF-8 (at most 3 bytes a UTF-16 unit) and the answer's bytes.
    const dataBytes = reply.ok ? reply.data.length : 0;
    const slab = this.#room(subject.length * 3 + dataBytes);
    const subjectBytes = writeSubject(subject, slab, this.#used);
    if (reply.ok) slab.set(reply.data, this.#used + subjectBytes);
    if (this.#count === MAX_REPLIES) this.#drop();
    const i = (this.#head + this.#count++) % MAX_REPLIES;
    this.#at[i] = this.#clock.now();
    this.#offset[i] = this.#used;
    this.#subjectBytes[i] = subjectBytes;
    this.#dataBytes[i] = dataBytes;
    this.#slab[i] = slab;
    this.#sender[i] = sender;
    this.#failure[i] = reply.ok ? undefined : reply;
    this.#used += subjectBytes + dataBytes;
    this.#bytes += subjectBytes + (reply.ok ? dataBytes : reply.message.length);
    this.#trim();
  }

  /** Sends every answer of the last REPLAY_MS again, oldest first; returns how many. */
  replay(): number {
    this.#trim();
    const n = this.#count;
    for (let k = 0; k < n; k++) {
      const i = (this.#head + k) % MAX_REPLIES;
      const slab = this.#slab[i]!;
      const at = this.#offset[i]!;
      const dataAt = at + this.#subjectBytes[i]!;
      const subject = text.decode(slab.subarray(at, dataAt));
      // The slabs are append-only: a view of one stays as it was.
      const out = this.#failure[i] ?? { ok: true, data: slab.subarray(dataAt, dataAt + this.#dataBytes[i]!) };
      this.#sender[i]!.send(subject, out);
    }
    return n;
  }

  /** The slab the next answer of up to `bytes` goes into: the current one, or a new one. */
  #room(bytes: number): Uint8Array {
    if (this.#current === undefined || this.#used + bytes > this.#current.length) {
      this.#current = new Uint8Array(Math.max(SLAB_BYTES, bytes));
      this.#used = 0;
    }
    return this.#current;
  }

  #trim(): void {
    const from = this.#clock.now() - REPLAY_MS;
    while (this.#count > 0 && (this.#at[this.#head]! < from || this.#bytes > MAX_BYTES)) this.#drop();
  }

  /** Forgets the oldest answer; its slab goes once no answer kept is in it. */
  #drop(): void {
    const i = this.#head;
    const failure = this.#failure[i];
    this.#bytes -=
      this.#subjectBytes[i]! + (failure && !failure.ok ? failure.message.length : this.#dataBytes[i]!);
    this.#slab[i] = undefined;
    this.#sender[i] = undefined;
    this.#failure[i] = undefined;
    this.#head = (this.#head + 1) % MAX_REPLIES;
    this.#count--;
  }
}
