import { webcrypto } from 'node:crypto';
import type { ImageBytes } from '../wire/image.js';
import { IMAGE_BLOCK_BYTES } from './image.js';

/** Digests computed at once while the pause compares an image: bounds the copies WebCrypto makes. */
const DIGESTS_IN_FLIGHT = 8;

/**
 * SHA-1 of `bytes`, computed off the event loop. WebCrypto copies its input when called, so the digest
 * is of the bytes as they are now, even when they are a live view of an actor's state.
 */
function digest(bytes: Uint8Array): Promise<ArrayBuffer> {
  return webcrypto.subtle.digest('SHA-1', bytes);
}

function sameDigest(a: ArrayBuffer, b: ArrayBuffer): boolean {
  return Buffer.compare(new Uint8Array(a), new Uint8Array(b)) === 0;
}

/**
 * What was sent of an image, as one digest per IMAGE_BLOCK_BYTES block instead of a copy: the pause
 * finds the blocks that changed since by digesting the image again. A copy of a 100 MiB image kept
 * for that comparison was 100 MiB more memory on the source for the whole move; the digests are a few
 * dozen KiB, and cost the pause the time to digest the image (≈0.7 ms per MiB here) against comparing
 * it with a copy (≈0.2 ms per MiB).
 */
export class BlockDigests {
  readonly #blocks: { length: number; digest: Promise<ArrayBuffer> }[] = [];

  /** Records bytes sent at `start`, a multiple of IMAGE_BLOCK_BYTES; each block whole but the image's last. */
  add(start: number, bytes: Uint8Array): void {
    if (start % IMAGE_BLOCK_BYTES !== 0)
      throw new RangeError(`a part digested by block starts at ${start}, not at a block boundary`);
    for (let at = 0; at < bytes.length; at += IMAGE_BLOCK_BYTES) {
      const block = bytes.subarray(at, Math.min(bytes.length, at + IMAGE_BLOCK_BYTES));
      const d = digest(block);
      // Awaited by changedRanges; a failure there is the move's failure.
      d.catch(() => undefined);
      this.#blocks[(start + at) / IMAGE_BLOCK_BYTES] = { length: block.length, digest: d };
    }
  }

  /**
   * Byte ranges `[start, end)` of `next` that differ from what was sent (as changedRanges with a copy):
   * every block whose digest or length differs, or that was never sent, adjacent ones merged.
   */
  async changedRanges(next: ImageBytes): Promise<[number, number][]> {
    const count = Math.ceil(next.length / IMAGE_BLOCK_BYTES);
    const changed = new Uint8Array(count);
    let index = 0;
    const lane = async () => {
      while (index < count) {
        const i = index++;
        const start = i * IMAGE_BLOCK_BYTES;
        const bytes = next.subarray(start, Math.min(next.length, start + IMAGE_BLOCK_BYTES));
        const sent = this.#blocks[i];
        if (!sent || sent.length !== bytes.length) changed[i] = 1;
        else {
          const [was, now] = await Promise.all([sent.digest, digest(bytes)]);
          if (!sameDigest(was, now)) changed[i] = 1;
        }
      }
    };
    await Promise.all(Array.from({ length: DIGESTS_IN_FLIGHT }, lane));
    const ranges: [number, number][] = [];
    for (let i = 0; i < count; i++) {
      if (!changed[i]) continue;
      const start = i * IMAGE_BLOCK_BYTES;
      const end = Math.min(next.length, start + IMAGE_BLOCK_BYTES);
      const last = ranges[ranges.length - 1];
      if (last && last[1] === start) last[1] = end;
      else ranges.push([start, end]);
    }
    return ranges;
  }
}
