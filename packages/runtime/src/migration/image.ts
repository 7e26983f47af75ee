import type { ImageBytes } from '../wire/image.js';

/** Unit of change between two snapshot images: a block that differs is sent again whole. */
export const IMAGE_BLOCK_BYTES = 64 * 1024;

/**
 * Byte ranges `[start, end)` of `next` that the target must receive to turn `prev` (what it holds:
 * what was copied, or the persisted record's snapshot) into `next` (an encoding, or an image read
 * where the state's arrays are): every block whose bytes differ, adjacent ones merged. A state that
 * changes in a few places keeps most blocks identical (an appended KV cache changes its tail), and
 * the hand-off sends only those.
 */
export function changedRanges(prev: ImageBytes | undefined, next: ImageBytes): [number, number][] {
  if (!prev) return next.length > 0 ? [[0, next.length]] : [];
  const ranges: [number, number][] = [];
  for (let start = 0; start < next.length; start += IMAGE_BLOCK_BYTES) {
    const end = Math.min(next.length, start + IMAGE_BLOCK_BYTES);
    const same =
      end <= prev.length && Buffer.compare(prev.subarray(start, end), next.subarray(start, end)) === 0;
    if (same) continue;
    const last = ranges[ranges.length - 1];
    if (last && last[1] === start) last[1] = end;
    else ranges.push([start, end]);
  }
  return ranges;
}

/**
 * The snapshot of an actor's persisted record, stored in chunks: its bytes (a range within one chunk
 * is a view of it), the chunks' names in order, and the chunks (each full but the last).
 */
export interface RecordImage extends ImageBytes {
  readonly names: string[];
  readonly chunks: Uint8Array[];
}

/** Splits ranges into parts of at most `partBytes`, in order. */
export function parts(ranges: [number, number][], partBytes: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [start, end] of ranges)
    for (let at = start; at < end; at += partBytes) out.push([at, Math.min(end, at + partBytes)]);
  return out;
}
