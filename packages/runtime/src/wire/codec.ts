import { addExtension, Packr } from 'msgpackr';
import { BadMessage } from '../errors.js';

// moreTypes keeps typed arrays (Float32Array, BigInt64Array, …) typed across the wire; records are off
// so that every process decodes a message without shared structure state. Structured clone is off
// explicitly: msgpackr's decoder otherwise honours its id/pointer extensions (0x69/0x70) whatever the
// options, so a hostile message could decode to a cyclic value that no reply or snapshot can encode.
// Decoding such a message now fails with BadMessage. The typed-array extension (0x74, below) needs
// none of this.
const packr = new Packr({ useRecords: false, moreTypes: true, structuredClone: false });

/** Typed-array constructors by msgpackr's type code (its 0x74 extension; an image's segment table). */
export const TYPED_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as const;

/** True only while `decode` runs: other msgpackr users in the process keep copying semantics. */
let zeroCopy = false;

// msgpackr's typed-array extension (0x74: a type code byte, then the elements). Its own reader copies
// every array into a fresh ArrayBuffer, which costs more than the rest of a small message's decode;
// inside `decode` an array whose elements are aligned in the received bytes is a view of them instead.
addExtension({
  type: 0x74,
  unpack(data: Uint8Array) {
    const code = data[0]!;
    const Typed = TYPED_ARRAYS[code as 0];
    const offset = data.byteOffset + 1;
    const bytes = data.length - 1;
    const size = Typed?.BYTES_PER_ELEMENT ?? 1;
    if (Typed && zeroCopy && offset % size === 0 && bytes % size === 0) {
      return new Typed(data.buffer, offset, bytes / size);
    }
    const copy = Uint8Array.prototype.slice.call(data, 1).buffer;
    if (Typed) return new Typed(copy);
    if (code === 16) return copy;
    if (code === 17) return new DataView(copy);
    throw new Error(`Could not find typed array for code ${code}`);
  },
});

export function encode(value: unknown): Uint8Array {
  try {
    return packr.pack(value);
  } catch (err) {
    throw new BadMessage(`the value cannot be encoded as msgpack (${(err as Error).message})`);
  }
}

/**
 * Encodes `value` into `into`, from its start, when it fits (the result is then a view of `into`);
 * else wherever msgpackr puts it. Later encodings never write into `into`: msgpackr goes on in its
 * own buffer where it left off, as if this encoding had not happened (its buffer and position are
 * module state). Switching to a fresh 8 KiB buffer after each call instead cost 8 KiB of external
 * memory a call: an actor snapshotted into slabs after every turn at 64 KiB ran a full collection
 * every 0.1 s. `into` is a Buffer, as msgpackr's own are: it writes strings with Buffer methods.
 */
export function encodeInto(value: unknown, into: Buffer): Uint8Array {
  // A value's bytes are a view of msgpackr's buffer ending at its position: a null's says where it is.
  const mark = encode(null);
  packr.useBuffer(into);
  try {
    return encode(value);
  } finally {
    packr.useBuffer(wholeBuffer(mark.buffer as ArrayBuffer));
    packr.position = mark.byteOffset + mark.length;
  }
}

/** A Buffer over all of `ab` (msgpackr's own buffers own their ArrayBuffer): the last one, again. */
let whole: Buffer | undefined;
function wholeBuffer(ab: ArrayBuffer): Buffer {
  if (whole?.buffer !== ab) whole = Buffer.from(ab);
  return whole;
}

/**
 * `bytes` as an array of its own: a view of a larger buffer (what `encode` returns: a slice of
 * msgpackr's shared buffer, megabytes after a large message) is copied, so that keeping a few bytes
 * for long does not keep that buffer alive.
 */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : Uint8Array.prototype.slice.call(bytes);
}

/**
 * Decodes one message. Typed arrays in it may be views of `bytes` (like a Node Buffer read from a
 * socket): copy one (`.slice()`) before keeping it for long or transferring its `.buffer`.
 */
export function decode(bytes: Uint8Array): unknown {
  zeroCopy = true;
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new BadMessage(`the payload is not valid msgpack (${(err as Error).message})`);
  } finally {
    zeroCopy = false;
  }
}
