// Reading checkpoint files of any size with typed errors: the path must be a regular file, reads are
// chunked (Node's fs aborts the process on a read length of 2^31 or more), and every fs error or
// short read becomes a `CheckpointInvalid` naming the path.

import { type FileHandle, open, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { CheckpointInvalid } from '../errors.js';

/** Most bytes one read asks for (Node's fs needs a length below 2^31; this also sizes staging buffers). */
export const MAX_READ_BYTES = 2 ** 30;
/** Most elements one Float32Array may have (V8's limit for typed arrays on 64-bit hosts). */
export const MAX_ARRAY_ELEMENTS = 2 ** 32;

const LITTLE_ENDIAN = endianness() === 'LE';

/** The fs error's code (ENOENT, EISDIR, …), else its message. */
export const reasonOf = (cause: unknown): string =>
  String((cause as { code?: unknown }).code ?? (cause as { message?: unknown }).message ?? 'unreadable');

/** Opens `path`, which must be a regular file (typed error otherwise, without opening a FIFO or device). */
export async function openCheckpoint(path: string): Promise<FileHandle> {
  const fail = (detail: string, cause?: unknown): never => {
    throw new CheckpointInvalid(path, detail, cause === undefined ? undefined : { cause });
  };
  let file: FileHandle | undefined;
  try {
    // Checked before opening (opening a FIFO would wait for a writer) and after (the path may change).
    const before = await stat(path);
    if (!before.isFile()) fail(notAFile(before));
    file = await open(path, 'r');
    const st = await file.stat();
    if (!st.isFile()) fail(notAFile(st));
    return file;
  } catch (e) {
    await file?.close();
    if (e instanceof CheckpointInvalid) throw e;
    return fail(`cannot read the file (${reasonOf(e)}); check the path`, e);
  }
}

function notAFile(st: { isDirectory(): boolean }): string {
  return st.isDirectory()
    ? 'this is a directory, not a regular file: name the checkpoint file itself'
    : 'this is not a regular file (a device, FIFO or socket): name the checkpoint file itself';
}

/** `file`'s size in bytes (typed error if it cannot be had). */
export async function fileSize(path: string, file: FileHandle): Promise<number> {
  try {
    return (await file.stat()).size;
  } catch (cause) {
    throw new CheckpointInvalid(path, `cannot read the file's size (${reasonOf(cause)})`, { cause });
  }
}

/**
 * Fills `into` with the file's bytes from `position`, in reads of at most `chunkBytes`; a short file
 * or a failed read is a typed error naming `what`.
 */
export async function readExactly(
  path: string,
  file: FileHandle,
  into: ArrayBufferView,
  position: number,
  what: string,
  chunkBytes = MAX_READ_BYTES,
): Promise<void> {
  for (let done = 0; done < into.byteLength; ) {
    const n = Math.min(chunkBytes, into.byteLength - done);
    // A view per chunk: a Uint8Array over the whole of a large Float32Array could exceed its own limit.
    const chunk = new Uint8Array(into.buffer, into.byteOffset + done, n);
    let bytesRead: number;
    try {
      ({ bytesRead } = await file.read(chunk, 0, n, position + done));
    } catch (cause) {
      throw new CheckpointInvalid(
        path,
        `reading ${what} failed (${reasonOf(cause)}); check the file and the disk it is on`,
        { cause },
      );
    }
    if (bytesRead === 0) {
      throw new CheckpointInvalid(
        path,
        `${what} was cut short while reading: the file ends at byte ${position + done}, inside its ` +
          `${into.byteLength} bytes from byte ${position}; the file is truncated, or changed while it was read`,
      );
    }
    done += bytesRead;
  }
}

/** A zeroed Float32Array of `n` elements for `what` (typed error past the array limit or out of memory). */
export function allocFloats(path: string, n: number, what: string): Float32Array {
  if (n > MAX_ARRAY_ELEMENTS) {
    throw new CheckpointInvalid(
      path,
      `${what} has ${n} elements, more than one array can hold (${MAX_ARRAY_ELEMENTS}); it cannot be loaded`,
    );
  }
  try {
    return new Float32Array(n);
  } catch (cause) {
    throw new CheckpointInvalid(
      path,
      `${what} needs ${4 * n} bytes of memory as f32, which could not be allocated; load it on a host ` +
        'with more memory',
      { cause },
    );
  }
}

/** A staging buffer of `n` bytes for `what` (typed error when it cannot be allocated). */
export function allocBytes(path: string, n: number, what: string): Buffer {
  try {
    return Buffer.allocUnsafe(n);
  } catch (cause) {
    throw new CheckpointInvalid(path, `a buffer of ${n} bytes to read ${what} could not be allocated`, {
      cause,
    });
  }
}

/** Reads little-endian f32 values from `position` straight into `out` (no staging copy). */
export async function readFloats(
  path: string,
  file: FileHandle,
  out: Float32Array,
  position: number,
  what: string,
  chunkBytes = MAX_READ_BYTES,
): Promise<void> {
  await readExactly(path, file, out, position, what, chunkBytes);
  if (!LITTLE_ENDIAN) {
    for (let at = 0; at < out.byteLength; at += MAX_READ_BYTES) {
      Buffer.from(out.buffer, out.byteOffset + at, Math.min(MAX_READ_BYTES, out.byteLength - at)).swap32();
    }
  }
}
