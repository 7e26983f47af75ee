import { randomFillSync } from 'node:crypto';
import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { rebuildError, type StitchRuntimeError } from './errors.js';
import { OutgoingHeaders } from './outgoing-headers.js';

/** Header names of the stitch envelope; every message carries the first four. */
export const H = {
  traceparent: 'traceparent',
  idempotencyKey: 'Stitch-Idempotency-Key',
  sender: 'Stitch-Sender',
  deadline: 'Stitch-Deadline',
  /** Durable mode: the inbox the actor answers on (JetStream publishes carry no reply subject). */
  replyTo: 'Stitch-Reply-To',
  /** `<chunk id>:<index>:<count>` on every part of a chunked message. */
  chunk: 'Stitch-Chunk',
  /** `<n>` on a message that carries n coalesced asks/tells, or n coalesced replies (see batch.ts). */
  batch: 'Stitch-Batch',
  errorCode: 'Stitch-Error-Code',
  errorName: 'Stitch-Error-Name',
} as const;

export interface Envelope {
  traceparent: string;
  idempotencyKey?: string;
  sender: string;
  /** Epoch ms after which the caller no longer waits. */
  deadline: number;
}

// Random bytes for trace ids come from a pooled buffer: one syscall per 256 ids, not per message.
const pool = Buffer.alloc(24 * 256);
let poolAt = pool.length;

/** A fresh W3C traceparent (`00-<trace id>-<parent id>-01`). */
export function newTraceparent(): string {
  if (poolAt >= pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const hex = pool.toString('hex', poolAt, poolAt + 24);
  poolAt += 24;
  return `00-${hex.slice(0, 32)}-${hex.slice(32)}-01`;
}

/** `vv-<32 hex>-<16 hex>-ff`, checked by hand: it runs for every message and a regex costs more. */
export function isTraceparent(value: string): boolean {
  if (value.length !== 55) return false;
  for (let i = 0; i < 55; i++) {
    const c = value.charCodeAt(i);
    if (i === 2 || i === 35 || i === 52) {
      if (c !== 45) return false; // '-'
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false; // 0-9 a-f
  }
  return true;
}

export function envelopeHeaders(env: Envelope): MsgHdrs {
  const h = new OutgoingHeaders();
  h.append(H.traceparent, env.traceparent);
  h.append(H.sender, env.sender);
  h.append(H.deadline, String(env.deadline));
  if (env.idempotencyKey !== undefined) h.append(H.idempotencyKey, env.idempotencyKey);
  return h;
}

/** The stitch headers of a received message, read in one pass (each MsgHdrs `get` scans every key). */
export interface ReceivedHeaders {
  traceparent?: string;
  sender?: string;
  deadline?: string;
  idempotencyKey?: string;
  replyTo?: string;
  chunk?: string;
  batch?: string;
}

const FIELDS: Record<string, keyof ReceivedHeaders> = {
  [H.traceparent]: 'traceparent',
  [H.sender]: 'sender',
  [H.deadline]: 'deadline',
  [H.idempotencyKey]: 'idempotencyKey',
  [H.replyTo]: 'replyTo',
  [H.chunk]: 'chunk',
  [H.batch]: 'batch',
};

export function readHeaders(h: MsgHdrs | undefined): ReceivedHeaders {
  const out: ReceivedHeaders = {};
  if (!h) return out;
  for (const [k, v] of h) {
    const field = FIELDS[k];
    // The first value, as MsgHdrs `get` would return it.
    if (field !== undefined && out[field] === undefined && v[0]) out[field] = v[0];
  }
  return out;
}

/**
 * The header block of a received message where nats.js keeps it (`_rdata` up to `_msg.hdr`, nats-core
 * 3.x). Reading it directly skips nats.js `MsgHdrs`, whose decode canonicalises and validates every
 * header: 6 of the 29 µs an actor spent on a message on the serial path. Undefined when nats.js
 * keeps it some other way; `readMessageHeaders` then falls back to `m.headers`.
 */
export function headerBlock(m: Msg): Uint8Array | undefined {
  const held = m as unknown as { _rdata?: unknown; _msg?: { hdr?: unknown } };
  const data = held._rdata;
  const size = held._msg?.hdr;
  if (!(data instanceof Uint8Array) || typeof size !== 'number' || size <= 0 || size > data.length)
    return undefined;
  return data.subarray(0, size);
}

/** Same as `readHeaders(m.headers)`: key matched exactly, value trimmed, the first value of a key wins. */
export function readMessageHeaders(m: Msg): ReceivedHeaders {
  const block = headerBlock(m);
  if (!block) return readHeaders(m.headers);
  const text = Buffer.from(block.buffer, block.byteOffset, block.length).toString('utf8');
  if (!text.startsWith('NATS/1.0')) return readHeaders(m.headers);
  const out: ReceivedHeaders = {};
  let at = text.indexOf('\r\n') + 2;
  while (at > 1 && at < text.length) {
    let end = text.indexOf('\r\n', at);
    if (end === -1) end = text.length;
    const colon = text.indexOf(':', at);
    if (colon > -1 && colon < end) {
      const field = FIELDS[text.slice(at, colon)];
      if (field !== undefined && out[field] === undefined) {
        const value = text.slice(colon + 1, end).trim();
        if (value) out[field] = value;
      }
    }
    at = end + 2;
  }
  return out;
}

/**
 * The envelope of received headers; a message from a foreign client gets no deadline. The traceparent
 * is passed on as received (possibly empty or malformed): the turn context checks it when a handler
 * reads it and starts a fresh trace then, so a message whose handler never looks costs no check.
 */
export function envelopeOf(r: ReceivedHeaders): Envelope {
  const deadline = Number(r.deadline);
  const env: Envelope = {
    traceparent: r.traceparent ?? '',
    sender: r.sender || 'unknown',
    deadline: deadline > 0 && deadline < Number.POSITIVE_INFINITY ? deadline : Number.POSITIVE_INFINITY,
  };
  if (r.idempotencyKey) env.idempotencyKey = r.idempotencyKey;
  return env;
}

/** The error a reply carries, if any; its body is the error message as UTF-8. */
export function replyError(h: MsgHdrs | undefined, body: Uint8Array): StitchRuntimeError | undefined {
  const code = h?.get(H.errorCode);
  if (!code) return undefined;
  return rebuildError(code, h?.get(H.errorName) || 'Error', Buffer.from(body).toString('utf8'));
}
