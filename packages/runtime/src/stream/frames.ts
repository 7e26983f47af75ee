import { BadMessage } from '../errors.js';
import { decode, encode } from '../wire/codec.js';

/**
 * The wire of a stream (see ActorRef.stream). Producer → the reader's inbox: `open` (the subject the
 * reader answers on), then `item`s numbered from 0, then `end` or `error` with the number of items
 * sent. Reader → that subject: `credit` (items consumed so far, cumulative, so a lost or repeated one
 * does no harm) and `cancel`. Anyone may publish to an inbox, so every frame is validated.
 */
export type ProducerFrame =
  | { t: 'open'; ctl: string }
  | { t: 'item'; seq: number; v: unknown }
  | { t: 'end'; count: number }
  | { t: 'error'; count: number; code: string; name: string; message: string };

export type ReaderFrame = { t: 'credit'; read: number } | { t: 'cancel' };

/** What `ref.stream()` adds to its message for the actor: where items go, and how many may be unread. */
export interface StreamSpec {
  inbox: string;
  window: number;
}

/** Most items a reader lets be unread at once; its buffer never holds more. */
export const MAX_WINDOW = 1024;
const MAX_SUBJECT = 256;
const SUBJECT = /^_INBOX\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** The stream request of a message, checked: items only ever go to an inbox (never to an actor's subject). */
export function parseStreamSpec(v: unknown): StreamSpec {
  const s = v as Partial<StreamSpec> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.inbox !== 'string' ||
    s.inbox.length > MAX_SUBJECT ||
    !SUBJECT.test(s.inbox) ||
    !Number.isInteger(s.window) ||
    (s.window as number) < 1 ||
    (s.window as number) > MAX_WINDOW
  ) {
    throw new BadMessage(
      `$stream must be { inbox: an _INBOX. subject, window: an integer 1..${MAX_WINDOW} }; send it with ref.stream()`,
    );
  }
  return { inbox: s.inbox, window: s.window as number };
}

const count = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const text = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

/** The decoded frame when it is an object at all. */
function frameObject(data: Uint8Array): Record<string, unknown> | undefined {
  try {
    const f = decode(data);
    return typeof f === 'object' && f !== null ? (f as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A producer frame, or undefined for anything else (dropped and counted by the reader). */
export function parseProducerFrame(data: Uint8Array): ProducerFrame | undefined {
  const f = frameObject(data);
  if (!f) return undefined;
  switch (f.t) {
    case 'open':
      return text(f.ctl, MAX_SUBJECT) && SUBJECT.test(f.ctl) ? { t: 'open', ctl: f.ctl } : undefined;
    case 'item':
      return count(f.seq) ? { t: 'item', seq: f.seq, v: f.v } : undefined;
    case 'end':
      return count(f.count) ? { t: 'end', count: f.count } : undefined;
    case 'error':
      return count(f.count) && text(f.code, 64) && text(f.name, 128) && text(f.message, 4096)
        ? { t: 'error', count: f.count, code: f.code, name: f.name, message: f.message }
        : undefined;
    default:
      return undefined;
  }
}

export function parseReaderFrame(data: Uint8Array): ReaderFrame | undefined {
  const f = frameObject(data);
  if (!f) return undefined;
  if (f.t === 'cancel') return { t: 'cancel' };
  if (f.t === 'credit' && count(f.read)) return { t: 'credit', read: f.read };
  return undefined;
}

export function encodeFrame(frame: ProducerFrame | ReaderFrame): Uint8Array {
  return encode(frame);
}
