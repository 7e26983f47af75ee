import { setTimeout as sleep } from 'node:timers/promises';
import { Overloaded, PayloadTooLarge } from '../errors.js';

/** Room kept in every message for headers and protocol overhead, so a chunk never exceeds max_payload. */
export const HEADER_ROOM = 4096;

export function split(data: Uint8Array, chunkSize: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += chunkSize) parts.push(data.subarray(at, at + chunkSize));
  return parts;
}

export function chunkHeader(id: string, index: number, count: number): string {
  return `${id}:${index}:${count}`;
}

/** Limits of one Assembler; every one bounds memory that a sender (possibly hostile) makes it hold. */
export interface AssemblerLimits {
  /**
   * Largest message reassembled, in bytes; also the most bytes one partial message may hold. Parts
   * claimed per message are bounded by it too (`maxMessageBytes / partBytes`, rounded up), so a header
   * cannot make the receiver allocate for billions of parts. @default 64 MiB
   */
  maxMessageBytes?: number;
  /** Size of a full part (the sender's max_payload less HEADER_ROOM). @default 1 MiB - HEADER_ROOM */
  partBytes?: number;
  /** Incomplete messages under one key (an actor subject, one ask's reply) at once. @default 8 */
  maxPartialsPerKey?: number;
  /** Incomplete messages at once, all keys together. @default 64 */
  maxPartials?: number;
  /** Bytes held in incomplete messages, all keys together. @default 256 MiB */
  maxPendingBytes?: number;
  /** An incomplete message is dropped this long after its first part arrived (later parts do not extend it). @default 30 s */
  ttlMs?: number;
  /** @default Date.now */
  now?: () => number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

interface Partial {
  key: string;
  parts: Uint8Array[];
  received: number;
  bytes: number;
  expires: number;
}

/**
 * Reassembles chunked messages. NATS keeps the order of one publisher's messages to one subscriber,
 * but parts are indexed anyway so a gap is detected (the message is then dropped, not corrupted).
 * Incomplete messages are forgotten `ttlMs` after their first part, so a sender that died mid-message
 * (or never meant to finish) leaks nothing. A part beyond a limit throws PayloadTooLarge (too big a
 * message) or Overloaded (too many incomplete ones) and its message is dropped; a malformed header is
 * ignored.
 */
export class Assembler {
  readonly #partials = new Map<string, Partial>();
  readonly #perKey = new Map<string, number>();
  readonly #maxBytes: number;
  readonly #maxParts: number;
  readonly #maxPerKey: number;
  readonly #maxPartials: number;
  readonly #maxPending: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #pendingBytes = 0;
  #sweeping = false;

  constructor(limits: AssemblerLimits = {}) {
    this.#maxBytes = limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const partBytes = Math.max(1, limits.partBytes ?? 1024 * 1024 - HEADER_ROOM);
    this.#maxParts = Math.ceil(this.#maxBytes / partBytes);
    this.#maxPerKey = limits.maxPartialsPerKey ?? 8;
    this.#maxPartials = limits.maxPartials ?? 64;
    this.#maxPending = limits.maxPendingBytes ?? 256 * 1024 * 1024;
    this.#ttlMs = limits.ttlMs ?? 30_000;
    this.#now = limits.now ?? Date.now;
  }

  /** Adds one part; returns the whole message when `key`'s last part arrives, else undefined. */
  add(key: string, header: string, data: Uint8Array): Uint8Array | undefined {
    const [id, indexText, countText] = header.split(':');
    const index = Number(indexText);
    const count = Number(countText);
    if (!id || !Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count)
      return undefined;
    const full = `${key}/${id}`;
    const now = this.#now();
    let p = this.#partials.get(full);
    if (p && p.expires < now) {
      this.#drop(full, p);
      p = undefined;
    }
    if (!p) {
      if (count > this.#maxParts) throw this.#tooLarge(`claims ${count} parts`);
      if ((this.#perKey.get(key) ?? 0) >= this.#maxPerKey)
        throw new Overloaded(`${this.#maxPerKey} chunked messages from this sender are incomplete`);
      if (this.#partials.size >= this.#maxPartials)
        throw new Overloaded(`${this.#maxPartials} chunked messages are incomplete`);
      p = { key, parts: new Array(count), received: 0, bytes: 0, expires: now + this.#ttlMs };
      this.#partials.set(full, p);
      this.#perKey.set(key, (this.#perKey.get(key) ?? 0) + 1);
      void this.#sweep();
    }
    if (count !== p.parts.length) {
      this.#drop(full, p);
      return undefined;
    }
    if (p.parts[index] !== undefined) return undefined;
    if (p.bytes + data.length > this.#maxBytes) {
      this.#drop(full, p);
      throw this.#tooLarge(`grew past ${this.#maxBytes} bytes`);
    }
    if (this.#pendingBytes + data.length > this.#maxPending) {
      this.#drop(full, p);
      throw new Overloaded(`incomplete chunked messages hold ${this.#pendingBytes} bytes`);
    }
    // Copy: the transport may reuse the buffer a message arrived in.
    p.parts[index] = data.slice();
    p.received++;
    p.bytes += data.length;
    this.#pendingBytes += data.length;
    if (p.received < count) return undefined;
    this.#drop(full, p);
    return Buffer.concat(p.parts);
  }

  get pending(): number {
    return this.#partials.size;
  }

  /** Bytes held in incomplete messages. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  #tooLarge(what: string): PayloadTooLarge {
    const err = new PayloadTooLarge(this.#maxBytes, this.#maxBytes, '');
    err.message = `a chunked message ${what}: the receiver takes at most ${this.#maxBytes} bytes (${this.#maxParts} parts); send a reference to the object store instead.`;
    return err;
  }

  #drop(full: string, p: Partial): void {
    if (this.#partials.get(full) !== p) return;
    this.#partials.delete(full);
    this.#pendingBytes -= p.bytes;
    const left = (this.#perKey.get(p.key) ?? 1) - 1;
    if (left > 0) this.#perKey.set(p.key, left);
    else this.#perKey.delete(p.key);
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    while (this.#partials.size > 0) {
      await sleep(Math.min(this.#ttlMs, 5000), undefined, { ref: false });
      const now = this.#now();
      for (const [k, p] of this.#partials) if (p.expires < now) this.#drop(k, p);
    }
    this.#sweeping = false;
  }
}
