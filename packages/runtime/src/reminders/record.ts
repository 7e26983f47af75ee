import type { ActorRefData, DeliveryMode } from '../actor/ref-data.js';
import { checkToken } from '../cluster/names.js';
import { InvalidOptions } from '../errors.js';
import { decode, encode } from '../wire/codec.js';

/** What `setReminder` takes: the message to send, when, and how often. */
export interface ReminderOptions {
  /** Sent to the actor as an ask each time the reminder is due: `{ type, ... }` naming a handler. */
  message: { type: string; [field: string]: unknown };
  /** First due this long from now. @default periodMs, or 0 for a reminder without one */
  dueMs?: number;
  /** Due again this long after each time; absent or 0: once. */
  periodMs?: number;
  /** How the message is sent (durable: through the actor's stream, applied once). @default 'fast' */
  mode?: DeliveryMode;
}

/** A reminder as `reminders(ref)` lists it. */
export interface ReminderInfo {
  name: string;
  /** Epoch ms when it is next due. */
  dueAt: number;
  /** 0 for a reminder that is due once. */
  periodMs: number;
  mode: DeliveryMode;
}

/** A reminder as stored (msgpack) in `stitch_<cluster>_reminders`, key `<type>.<id>.<name>`. */
export interface ReminderRecord extends ReminderInfo {
  v: 1;
  type: string;
  id: string;
  /** The message, encoded once when set. */
  message: Uint8Array;
}

/** Largest encoded message a reminder carries. */
export const MAX_REMINDER_MESSAGE_BYTES = 64 * 1024;
/** Shortest period: a reminder is a KV write per firing, not a timer loop. */
export const MIN_REMINDER_PERIOD_MS = 100;
/** Farthest a reminder may be due, and longest period: a year. */
export const MAX_REMINDER_MS = 366 * 24 * 3600 * 1000;

export function reminderKey(ref: ActorRefData, name: string): string {
  return `${ref.type}.${ref.id}.${name}`;
}

/** The record `setReminder` stores, or InvalidOptions saying what to change. */
export function reminderRecord(
  ref: ActorRefData,
  name: string,
  o: ReminderOptions,
  now: number,
): ReminderRecord {
  checkToken('actor type', ref.type);
  checkToken('actor id', ref.id);
  checkToken('reminder name', name);
  if (typeof o !== 'object' || o === null) throw new InvalidOptions('reminder options must be an object');
  const periodMs = o.periodMs ?? 0;
  if (periodMs !== 0 && !msIn(periodMs, MIN_REMINDER_PERIOD_MS))
    throw new InvalidOptions(
      `reminder periodMs must be 0 (once) or an integer from ${MIN_REMINDER_PERIOD_MS} to ${MAX_REMINDER_MS}`,
    );
  const dueMs = o.dueMs ?? periodMs;
  if (!msIn(dueMs, 0))
    throw new InvalidOptions(`reminder dueMs must be an integer from 0 to ${MAX_REMINDER_MS}`);
  const mode = o.mode ?? 'fast';
  if (mode !== 'fast' && mode !== 'durable')
    throw new InvalidOptions('reminder mode must be "fast" or "durable"');
  if (typeof o.message?.type !== 'string')
    throw new InvalidOptions(
      'a reminder message must be an object { type, ... } naming a handler of the actor',
    );
  const message = encode(o.message);
  if (message.length > MAX_REMINDER_MESSAGE_BYTES)
    throw new InvalidOptions(
      `a reminder message encodes to ${message.length} bytes, above ${MAX_REMINDER_MESSAGE_BYTES}: keep large data in the actor's state`,
    );
  return { v: 1, type: ref.type, id: ref.id, name, dueAt: now + dueMs, periodMs, mode, message };
}

function msIn(v: unknown, min: number): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= MAX_REMINDER_MS;
}

export function encodeReminder(r: ReminderRecord): Uint8Array {
  return encode(r);
}

/**
 * The record stored under `key`, or undefined when the bytes are not one (anything a client with
 * write access to the bucket put there): checked field by field, the key included.
 */
export function parseReminder(key: string, bytes: Uint8Array): ReminderRecord | undefined {
  let v: Partial<ReminderRecord> | null;
  try {
    v = decode(bytes) as Partial<ReminderRecord> | null;
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || v.v !== 1) return undefined;
  const { type, id, name, dueAt, periodMs, mode, message } = v;
  if (typeof type !== 'string' || typeof id !== 'string' || typeof name !== 'string') return undefined;
  if (key !== reminderKey({ type, id }, name)) return undefined;
  if (typeof dueAt !== 'number' || !Number.isSafeInteger(dueAt)) return undefined;
  if (periodMs !== 0 && !msIn(periodMs, MIN_REMINDER_PERIOD_MS)) return undefined;
  if (mode !== 'fast' && mode !== 'durable') return undefined;
  if (!(message instanceof Uint8Array) || message.length > MAX_REMINDER_MESSAGE_BYTES) return undefined;
  return { v: 1, type, id, name, dueAt, periodMs: periodMs as number, mode, message: message.slice() };
}

/**
 * When a periodic reminder that was due at `dueAt` is due next, seen at `now`: the first tick after
 * now, so that a reminder whose owner was down for many periods fires once for them, not once each.
 */
export function nextDue(dueAt: number, periodMs: number, now: number): number {
  if (dueAt + periodMs > now) return dueAt + periodMs;
  return dueAt + periodMs * (Math.floor((now - dueAt) / periodMs) + 1);
}
