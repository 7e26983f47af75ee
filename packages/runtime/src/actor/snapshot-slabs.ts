import { encode, encodeInto } from '../wire/codec.js';

/** Snapshots shorter than this are encoded in msgpackr's shared buffers, as any message is. */
export const SLAB_MIN_BYTES = 64 * 1024;

/**
 * The buffers an actor that snapshots after every turn encodes its snapshots into. msgpackr gives a
 * large value a buffer of its own, four times its size below 16 MiB: at 1 MiB a turn's snapshot left
 * more than a megabyte of garbage, and the load alone raised two nodes' resident memory by 120 MB
 * between collections. Here a snapshot's buffer is used again for the snapshot after next, unless
 * something read the snapshot meanwhile (`read`): that one keeps its buffer for good, so that bytes
 * handed out are never written over.
 */
export class SnapshotSlabs {
  /** The buffer of the current snapshot, while nothing but its record has read it. */
  #current: Buffer | undefined;
  /** A buffer whose snapshot is gone: the next encoding goes there. */
  #spare: Buffer | undefined;
  #lastLength = 0;

  /** `value` encoded, in a buffer reused when one is free. */
  encode(value: unknown): Uint8Array {
    const into =
      this.#spare ??
      (this.#lastLength >= SLAB_MIN_BYTES ? Buffer.alloc(slabBytes(this.#lastLength)) : undefined);
    this.#spare = undefined;
    const bytes = into ? encodeInto(value, into) : encode(value);
    this.#lastLength = bytes.length;
    this.replaced();
    // A buffer too small for this snapshot is dropped; the next one is sized for it.
    if (into && bytes.buffer === into.buffer) this.#current = into;
    return bytes;
  }

  /** Someone else holds the current snapshot now: its buffer is never used again. */
  read(): void {
    this.#current = undefined;
  }

  /** The record no longer holds the current snapshot (a new one replaces it): its buffer is free. */
  replaced(): void {
    if (this.#current) this.#spare = this.#current;
    this.#current = undefined;
  }
}

/** Room for a snapshot of about `length` bytes that grows a little. */
const slabBytes = (length: number) => Math.ceil((length * 1.125 + 4096) / 4096) * 4096;
