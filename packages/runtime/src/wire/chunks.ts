import { setTimeout as sleep } from 'node:timers/promises';

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

interface Partial {
  parts: Uint8Array[];
  received: number;
  bytes: number;
  expires: number;
}

/**
 * Reassembles chunked messages. NATS keeps the order of one publisher's messages to one subscriber,
 * but parts are indexed anyway so a gap is detected (the message is then dropped, not corrupted).
 * Incomplete messages are forgotten after `ttlMs` so a sender that died mid-message leaks nothing.
 */
export class Assembler {
  readonly #partials = new Map<string, Partial>();
  readonly #ttlMs: number;
  #sweeping = false;

  constructor(ttlMs = 30_000) {
    this.#ttlMs = ttlMs;
  }

  /** Adds one part; returns the whole message when `key`'s last part arrives, else undefined. */
  add(key: string, header: string, data: Uint8Array): Uint8Array | undefined {
    const [id, indexText, countText] = header.split(':');
    const index = Number(indexText);
    const count = Number(countText);
    if (!id || !Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count)
      return undefined;
    const full = `${key}/${id}`;
    let p = this.#partials.get(full);
    if (!p) {
      p = { parts: new Array(count), received: 0, bytes: 0, expires: 0 };
      this.#partials.set(full, p);
      this.#sweep();
    }
    p.expires = Date.now() + this.#ttlMs;
    if (p.parts[index] === undefined) {
      // Copy: the transport may reuse the buffer a message arrived in.
      p.parts[index] = data.slice();
      p.received++;
      p.bytes += data.length;
    }
    if (p.received < count) return undefined;
    this.#partials.delete(full);
    return Buffer.concat(p.parts);
  }

  get pending(): number {
    return this.#partials.size;
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    while (this.#partials.size > 0) {
      await sleep(Math.min(this.#ttlMs, 5000), undefined, { ref: false });
      const now = Date.now();
      for (const [k, p] of this.#partials) if (p.expires < now) this.#partials.delete(k);
    }
    this.#sweeping = false;
  }
}
