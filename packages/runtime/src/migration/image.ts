import type { ImageBytes } from '../wire/image.js';

/**
 * Unit of change between two snapshot images where the source keeps a digest per block instead of a
 * copy: a block that differs is sent again whole.
 */
export const IMAGE_BLOCK_BYTES = 64 * 1024;

/**
 * Unit of change within a block that differs, where the source compares with a copy: a state changed
 * in a few places (a counter, a row) sends those units, not their blocks (at 1 MiB, 8 KiB in the pause
 * instead of 128).
 */
const CHANGE_UNIT_BYTES = 4 * 1024;

/**
 * Byte ranges `[start, end)` of `next` that the target must receive to turn `prev` (what it holds:
 * what was copied, or the persisted record's snapshot) into `next` (an encoding, or an image read
 * where the state's arrays are): every unit whose bytes differ, adjacent ones merged (found block by
 * block: most blocks are equal, and one compare says so). A state that
 * changes in a few places keeps most blocks identical (an appended KV cache changes its tail), and
 * the hand-off sends only those.
 */
export function changedRanges(prev: ImageBytes | undefined, next: ImageBytes): [number, number][] {
  if (!prev) return next.length > 0 ? [[0, next.length]] : [];
  const ranges: [number, number][] = [];
  // Blocks no larger than a record's chunks: a block within one chunk is compared as a view of it.
  const block = Math.min(IMAGE_BLOCK_BYTES, (prev as Partial<RecordImage>).chunkBytes ?? IMAGE_BLOCK_BYTES);
  for (let start = 0; start < next.length; start += block) {
    const end = Math.min(next.length, start + block);
    if (sameBytes(prev, next, start, end)) continue;
    for (let at = start; at < end; at += CHANGE_UNIT_BYTES) {
      const to = Math.min(end, at + CHANGE_UNIT_BYTES);
      if (sameBytes(prev, next, at, to)) continue;
      const last = ranges[ranges.length - 1];
      if (last && last[1] === at) last[1] = to;
      else ranges.push([at, to]);
    }
  }
  return ranges;
}

/** Whether `prev` holds `next`'s bytes `[start, end)` at the same place. */
function sameBytes(prev: ImageBytes, next: ImageBytes, start: number, end: number): boolean {
  return end <= prev.length && Buffer.compare(prev.subarray(start, end), next.subarray(start, end)) === 0;
}

/**
 * The snapshot of an actor's persisted record, stored in chunks: its bytes (a range within one chunk
 * is a view of it), the chunks' names in order, and the chunks (each full but the last).
 */
export interface RecordImage extends ImageBytes {
  readonly names: string[];
  readonly chunks: Uint8Array[];
  /** Every chunk's size but the last's. */
  readonly chunkBytes: number;
}

/**
 * An actor's record as a migration's source names it before `begin`: the target reads the record
 * then or later, so what the source wrote since is all the target may lack at the commit.
 */
export interface RecordMark {
  revision: number;
  /** The outcome blocks that record says are sealed in their slots (its `h`). */
  sealed: number;
}

/**
 * The record the source wrote last, as stored, sent with the commit so that the target loads it
 * instead of reading it (a round trip to the bucket in the pause, and one per block and chunk).
 */
export interface ShippedRecord {
  record: Uint8Array;
  /** Chunks it names that were written since the source's RecordMark, by name. */
  chunks?: [string, Uint8Array][];
  /** Outcome blocks sealed since the RecordMark, each as stored in its slot. */
  blocks?: Uint8Array[];
}

/** Splits ranges into parts of at most `partBytes`, in order. */
export function parts(ranges: [number, number][], partBytes: number): [number, number][] {
  if (!(partBytes >= 1)) throw new RangeError(`a part of ${partBytes} B cannot carry an image`);
  const out: [number, number][] = [];
  for (const [start, end] of ranges)
    for (let at = start; at < end; at += partBytes) out.push([at, Math.min(end, at + partBytes)]);
  return out;
}
