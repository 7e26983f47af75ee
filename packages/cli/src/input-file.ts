import { closeSync, openSync, readSync } from 'node:fs';

/** Bytes of a key or seed file the CLI reads (a PEM key or an nkey seed is well under 1 KiB). */
export const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Bytes of a JSON file the CLI reads (a device catalog). */
export const MAX_JSON_FILE_BYTES = 16 * 1024 * 1024;

/** A file named on the command line is larger than the command takes: read whole, it could exhaust memory. */
export class InputTooLarge extends Error {
  readonly code = 'CLI_INPUT_TOO_LARGE';
  override readonly name = 'InputTooLarge';
  /** Bad input. */
  readonly exitCode = 2;
}

const CHUNK = 64 * 1024;

/**
 * The bytes of `file` (`-`: standard input), at most `maxBytes`: read in chunks and refused with
 * InputTooLarge as soon as it passes them, so a huge file, a device such as /dev/zero or an endless
 * pipe costs at most `maxBytes` of memory. Other failures are Node's (ENOENT, EISDIR, …).
 */
export function readInputFile(file: string, maxBytes: number, what: string): Buffer {
  const fd = file === '-' ? 0 : openSync(file, 'r');
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const n = readSync(fd, chunk, 0, CHUNK, null);
      if (n === 0) break;
      total += n;
      if (total > maxBytes)
        throw new InputTooLarge(
          `the ${what} ${file === '-' ? 'on standard input' : file} is larger than ${maxBytes} bytes, the most this command reads`,
        );
      chunks.push(n === CHUNK ? chunk : chunk.subarray(0, n));
    }
  } finally {
    if (fd !== 0) closeSync(fd);
  }
  return Buffer.concat(chunks, total);
}

/** readInputFile as UTF-8 text. */
export function readInputText(file: string, maxBytes: number, what: string): string {
  return readInputFile(file, maxBytes, what).toString('utf8');
}
