import { addExtension } from 'msgpackr';
import { BadMessage } from '../errors.js';
import { decode, encode, TYPED_ARRAYS } from './codec.js';

/** Typed arrays at least this long travel as segments of a snapshot image, not inside its msgpack. */
export const SEGMENT_MIN_BYTES = 64 * 1024;

/**
 * First byte of a segmented image: 0xc1 is the one byte msgpack never uses, so an image and a plain
 * msgpack snapshot cannot be mistaken for each other.
 */
const MAGIC = 0xc1;
/** Segments start at multiples of this in an image, so that any typed array is a view of it there. */
const ALIGN = 8;
/**
 * The first segment starts at a multiple of this: a header that grows by a few bytes (a counter
 * passing 255) leaves the segments where they were, so two images of one state taken apart compare
 * block by block (a migration's pause, a durable commit's chunks).
 */
const FIRST_SEGMENT_ALIGN = 4096;

type Typed = InstanceType<(typeof TYPED_ARRAYS)[number]>;

/** Where a segment was in the value: its index in the image's table. */
class SegmentRef {
  constructor(readonly index: number) {}
}

addExtension({
  Class: SegmentRef,
  type: 0x53,
  pack: (ref: SegmentRef) => encode(ref.index),
  unpack: (data: Uint8Array) => new SegmentRef(decode(data) as number),
});

/** Bytes read in ranges: a plain array, or an image whose segments are the state's own arrays. */
export interface ImageBytes {
  readonly length: number;
  /** Bytes `[start, end)`: a view where they lie in one piece, else a copy. */
  subarray(start: number, end: number): Uint8Array;
}

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
const firstSegmentAt = (headLength: number) =>
  Math.ceil(headLength / FIRST_SEGMENT_ALIGN) * FIRST_SEGMENT_ALIGN;

/**
 * An image read from the state's large typed arrays where they are, not copied: `[0xc1][u32 header
 * length][header: msgpack of the value with each large array replaced by a reference, and the
 * segments' table][each segment, aligned]`. Parts read later see the arrays as they are then.
 */
class SegmentedImage implements ImageBytes {
  readonly length: number;
  constructor(
    private readonly head: Uint8Array,
    private readonly segments: { at: number; bytes: Uint8Array }[],
  ) {
    const last = segments[segments.length - 1];
    this.length = last ? last.at + last.bytes.length : head.length;
  }

  subarray(start: number, end: number): Uint8Array {
    const pieces: { from: Uint8Array; at: number }[] = [];
    const take = (bytes: Uint8Array, at: number) => {
      const from = Math.max(start, at);
      const to = Math.min(end, at + bytes.length);
      if (from < to) pieces.push({ from: bytes.subarray(from - at, to - at), at: from - start });
    };
    take(this.head, 0);
    for (const s of this.segments) take(s.bytes, s.at);
    if (pieces.length === 1 && pieces[0]!.from.length === end - start) return pieces[0]!.from;
    // Padding between pieces stays zero.
    const out = new Uint8Array(end - start);
    for (const p of pieces) out.set(p.from, p.at);
    return out;
  }
}

/**
 * A snapshot value as a migration image: typed arrays of SEGMENT_MIN_BYTES or more (found through
 * plain objects and arrays) stay where they are and are read as the image is sent, so taking the
 * image costs the small part of the state only. Decode with decodeSnapshot.
 */
export function encodeImage(value: unknown): ImageBytes {
  const arrays: Typed[] = [];
  const seen = new Set<unknown>();
  const replace = (v: unknown): unknown => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView) && v.byteLength >= SEGMENT_MIN_BYTES) {
      arrays.push(v as Typed);
      return new SegmentRef(arrays.length - 1);
    }
    if (typeof v !== 'object' || v === null || seen.has(v)) return v;
    if (Array.isArray(v)) {
      seen.add(v);
      return v.map(replace);
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    seen.add(v);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replace(x)]));
  };
  const body = replace(value);
  const table = arrays.map((a) => [TYPED_ARRAYS.findIndex((T) => a instanceof T), a.byteLength]);
  const header = encode([body, table]);
  const head = new Uint8Array(5 + header.length);
  head[0] = MAGIC;
  new DataView(head.buffer).setUint32(1, header.length);
  head.set(header, 5);
  let at = firstSegmentAt(head.length);
  const segments = arrays.map((a) => {
    const seg = { at, bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) };
    at = align(at + a.byteLength);
    return seg;
  });
  return new SegmentedImage(head, segments);
}

/** A snapshot's value from its bytes: plain msgpack, or an image (its arrays are views of `bytes`). */
export function decodeSnapshot(bytes: Uint8Array): unknown {
  if (bytes[0] !== MAGIC) return decode(bytes);
  const fail = (why: string): never => {
    throw new BadMessage(`the snapshot image is malformed: ${why}`);
  };
  if (bytes.length < 5) fail('too short');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
  if (5 + headerLength > bytes.length) fail('its header runs past its end');
  const [body, table] = (decode(bytes.subarray(5, 5 + headerLength)) ?? []) as [unknown, unknown];
  if (!Array.isArray(table)) fail('no segment table');
  let at = firstSegmentAt(5 + headerLength);
  const views = (table as unknown[]).map((entry) => {
    const [code, length] = (Array.isArray(entry) ? entry : []) as [number, number];
    const T = TYPED_ARRAYS[code as 0];
    if (!T || !Number.isSafeInteger(length) || length < 0 || length % T.BYTES_PER_ELEMENT !== 0)
      fail('a segment has no type or a bad length');
    if (at + length > bytes.length) fail('a segment runs past its end');
    const offset = bytes.byteOffset + at;
    // A view where the bytes are aligned for the type (an image assembled in a buffer of its own), else a copy.
    const view =
      offset % T!.BYTES_PER_ELEMENT === 0
        ? new T!(bytes.buffer, offset, length / T!.BYTES_PER_ELEMENT)
        : new T!(bytes.slice(at, at + length).buffer);
    at = align(at + length);
    return view;
  });
  const restore = (v: unknown): unknown => {
    if (v instanceof SegmentRef) return views[v.index] ?? fail(`no segment ${v.index}`);
    if (Array.isArray(v)) return v.map(restore);
    if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype)
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, restore(x)]));
    return v;
  };
  return restore(body);
}
