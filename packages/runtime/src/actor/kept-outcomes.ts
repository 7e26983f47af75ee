import { DuplicateMessage } from '../errors.js';
import { ownBytes } from '../wire/codec.js';
import { failure, type Outcome } from '../wire/outcome.js';

/** Replies larger than this are kept as their size only; a repeat then gets ACTOR_DUPLICATE. */
const KEPT_REPLY_BYTES = 256;
/** Error messages are kept up to this many characters (a handler's message is not bounded). */
const KEPT_MESSAGE_CHARS = 1024;
/** Outcomes per sealed block: a block is written once, when its last key is committed. */
export const BLOCK = 32;

/**
 * An outcome as stored: the reply's bytes, the size of a reply too large to keep, or an error's
 * `[code, name, message]`. Records written before blocks existed hold whole `Outcome` objects.
 */
export type Kept = Uint8Array | number | [string, string, string] | Outcome;

/** A durable message's entry also holds its stream sequence (see UnconfirmedCommits). */
export type Entry = [key: string, kept: Kept] | [key: string, kept: Kept, seq: number];

/** Holds the number of an entry that could not be read (or a block that is missing). */
export const GAP: Entry = ['', -1];

/** The first block a window of `window` keys needs once `n` keys are committed. */
export function firstBlock(n: number, window: number): number {
  return Math.floor(Math.max(0, n - window) / BLOCK);
}

function keep(out: Outcome): Kept {
  if (out.ok) return out.data.length > KEPT_REPLY_BYTES ? out.data.length : ownBytes(out.data);
  return [out.code, out.name, out.message.slice(0, KEPT_MESSAGE_CHARS)];
}

function outcomeOf(key: string, kept: Kept): Outcome | undefined {
  if (kept instanceof Uint8Array) return { ok: true, data: kept };
  if (typeof kept === 'number') return failure(new DuplicateMessage(key, kept));
  if (Array.isArray(kept)) {
    const [code, name, message] = kept;
    return { ok: false, code: String(code), name: String(name), message: String(message) };
  }
  if (kept && typeof kept === 'object' && typeof kept.ok === 'boolean') return kept;
  return undefined;
}

/**
 * The outcomes of the latest applied durable keys, numbered in the order they were applied: key
 * number `c` lives in block `floor(c / BLOCK)`. Only appends and drops from the front (and from the back when a crash rolls effects back); what is kept
 * is what the persisted record (its tail and its blocks) describes.
 */
export class KeptOutcomes {
  #entries: Entry[] = [];
  /** Number of `#entries[0]`. */
  #base = 0;
  readonly #byKey = new Map<string, Kept>();

  /** Number the next key gets: how many keys were ever applied. */
  get next(): number {
    return this.#base + this.#entries.length;
  }

  get size(): number {
    return this.#byKey.size;
  }

  get(key: string): Outcome | undefined {
    const kept = this.#byKey.get(key);
    return kept === undefined ? undefined : outcomeOf(key, kept);
  }

  add(key: string, out: Outcome, seq?: number): void {
    const kept = keep(out);
    this.#entries.push(seq === undefined ? [key, kept] : [key, kept, seq]);
    this.#byKey.set(key, kept);
  }

  /** Starts over from stored entries, the first of which is number `base`; unreadable ones keep their number only. */
  restore(base: number, entries: Entry[]): void {
    this.#base = base;
    this.#byKey.clear();
    this.#entries = entries.map((e) => {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || outcomeOf(e[0], e[1]) === undefined) return GAP;
      this.#byKey.set(e[0], e[1]);
      return e;
    });
  }

  /** Entries numbered from `from` (at least the first kept) up to `to` (exclusive). */
  slice(from: number, to = this.next): Entry[] {
    return this.#entries.slice(Math.max(0, from - this.#base), Math.max(0, to - this.#base));
  }

  /** The stream sequences of the entries numbered below `n` (those a dropBelow(n) forgets). */
  seqsBelow(n: number): number[] {
    const seqs: number[] = [];
    for (const e of this.slice(0, n))
      if (e.length === 3 && Number.isSafeInteger(e[2]) && e[2] > 0) seqs.push(e[2]);
    return seqs;
  }

  /** Forgets every entry numbered `n` or above: their effects were rolled back, they are applied again. */
  dropFrom(n: number): void {
    if (n >= this.next) return;
    this.restore(this.#base, this.#entries.slice(0, Math.max(0, n - this.#base)));
  }

  /** Forgets every entry numbered below `n`. */
  dropBelow(n: number): void {
    const drop = Math.min(this.#entries.length, n - this.#base);
    if (drop <= 0) return;
    for (let i = 0; i < drop; i++) {
      const [key, kept] = this.#entries[i]!;
      // A key applied twice (a second message under it) is kept with its newer outcome.
      if (this.#byKey.get(key) === kept) this.#byKey.delete(key);
    }
    this.#entries = this.#entries.slice(drop);
    this.#base += drop;
  }
}
