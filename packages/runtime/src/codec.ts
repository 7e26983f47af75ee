import { Packr } from 'msgpackr';
import { BadMessage } from './errors.js';

// moreTypes keeps typed arrays (Float32Array, BigInt64Array, …) typed across the wire; records are off
// so that every process decodes a message without shared structure state.
const packr = new Packr({ useRecords: false, moreTypes: true });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new BadMessage(`the payload is not valid msgpack (${(err as Error).message})`);
  }
}
