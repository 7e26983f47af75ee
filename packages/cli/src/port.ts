import { InvalidOptions } from '@stitch/runtime';

/** A TCP port from a flag, or InvalidOptions. */
export function portOf(text: string, flag = '--port'): number {
  const port = Number(text);
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535)
    throw new InvalidOptions(`${flag} must be a port number 0-65535, found "${text}"`);
  return port;
}
