import { BadMessage } from '../errors.js';
import { decode } from './codec.js';
import type { Outcome } from './outcome.js';

/**
 * Wire format of coalesced messages (header `Stitch-Batch: <n>`). A batch of one is never sent: a
 * lone message keeps the plain single-message format, so foreign clients see nothing new.
 *
 * Ask/tell batch payload: msgpack array of `[reply | null, traceparent, deadline, key | null, message]`.
 * `message` is the message itself, its msgpack bytes spliced in as they were encoded at send time,
 * so the receiver decodes the whole batch with one unpack. A `bin` in its place is read as the
 * message's msgpack bytes, decoded on its own (a bad one fails only its item). The batch's own headers
 * carry `Stitch-Sender`; its reply subject is one of the items' (the server's no-responders status
 * comes back on it).
 *
 * Reply batch payload: msgpack array of `[reply, 2, value]` (value spliced in the same way),
 * `[reply, 1, bin]` (the value's bytes) or `[reply, 0, code, name, message]`, published to one of the
 * items' reply subjects (all share the caller's wildcard inbox).
 */

export interface RequestItem {
  reply: string | undefined;
  traceparent: string;
  deadline: number;
  key: string | undefined;
  /** The message's msgpack bytes. */
  body: Uint8Array;
}

/** A request item as read: `message` is decoded, or the error that made it unreadable. */
export interface ReceivedRequest {
  reply: string | undefined;
  traceparent: string;
  deadline: number;
  key: string | undefined;
  message: unknown;
  error: BadMessage | undefined;
}

export interface ReplyItem {
  reply: string;
  out: Outcome;
}

/** A reply item as read: the decoded value, or the error it carries. */
export type ReceivedReply =
  | { reply: string; ok: true; value: unknown }
  | { reply: string; ok: false; error: Outcome & { ok: false } };

/** Exact encoded size of a string field (nil when undefined). */
function strBytes(s: string | undefined): number {
  if (s === undefined) return 1;
  const n = Buffer.byteLength(s, 'utf8');
  return n + (n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);
}

/**
 * An upper bound of `requestBytes` from string lengths alone (3 bytes a UTF-16 unit, 5 bytes of str
 * header each): it is taken for every send, the exact size only when a batch is framed.
 */
export function requestBytesAtMost(item: RequestItem): number {
  const units = (item.reply?.length ?? 0) + item.traceparent.length + (item.key?.length ?? 0);
  return 1 + 3 * units + 15 + 9 + item.body.length;
}

export function requestBytes(item: RequestItem): number {
  return 1 + strBytes(item.reply) + strBytes(item.traceparent) + 9 + strBytes(item.key) + item.body.length;
}

export function replyBytes(item: ReplyItem): number {
  const { out } = item;
  const tail = out.ok ? out.data.length : strBytes(out.code) + strBytes(out.name) + strBytes(out.message);
  return 2 + strBytes(item.reply) + tail;
}

/** Hand-framed msgpack: the fixed fields are written here, the encoded values copied in whole. */
class Writer {
  readonly buf: Buffer;
  at = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  array(n: number): void {
    if (n < 16) this.buf[this.at++] = 0x90 | n;
    else if (n < 0x10000) {
      this.buf[this.at++] = 0xdc;
      this.at = this.buf.writeUInt16BE(n, this.at);
    } else {
      this.buf[this.at++] = 0xdd;
      this.at = this.buf.writeUInt32BE(n, this.at);
    }
  }

  str(s: string | undefined): void {
    if (s === undefined) {
      this.buf[this.at++] = 0xc0;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    if (n < 32) this.buf[this.at++] = 0xa0 | n;
    else if (n < 0x100) {
      this.buf[this.at++] = 0xd9;
      this.buf[this.at++] = n;
    } else if (n < 0x10000) {
      this.buf[this.at++] = 0xda;
      this.at = this.buf.writeUInt16BE(n, this.at);
    } else {
      this.buf[this.at++] = 0xdb;
      this.at = this.buf.writeUInt32BE(n, this.at);
    }
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  float(x: number): void {
    this.buf[this.at++] = 0xcb;
    this.at = this.buf.writeDoubleBE(x, this.at);
  }

  byte(b: number): void {
    this.buf[this.at++] = b;
  }

  raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
  }

  done(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
}

/** Array header sizes: fixarray, array16, array32. */
const arrayBytes = (n: number) => (n < 16 ? 1 : n < 0x10000 ? 3 : 5);

export function encodeRequests(items: RequestItem[]): Uint8Array {
  let size = arrayBytes(items.length);
  for (const i of items) size += requestBytes(i);
  const w = new Writer(size);
  w.array(items.length);
  for (const i of items) {
    w.byte(0x95);
    w.str(i.reply);
    w.str(i.traceparent);
    w.float(i.deadline);
    w.str(i.key);
    w.raw(i.body);
  }
  return w.done();
}

/** Throws BadMessage when the payload is not a well-formed request batch. */
export function decodeRequests(data: Uint8Array): ReceivedRequest[] {
  const raw = decode(data);
  if (!Array.isArray(raw)) throw new BadMessage('a Stitch-Batch payload is not an array');
  const out: ReceivedRequest[] = new Array(raw.length);
  for (let n = 0; n < raw.length; n++) {
    const r = raw[n] as unknown;
    if (!Array.isArray(r) || r.length !== 5)
      throw new BadMessage('a Stitch-Batch item is not [reply, traceparent, deadline, key, message]');
    const [reply, traceparent, deadline, key, body] = r as unknown[];
    let message = body;
    let error: BadMessage | undefined;
    if (body instanceof Uint8Array) {
      try {
        message = decode(body);
      } catch (err) {
        error = err as BadMessage;
      }
    }
    out[n] = {
      reply: typeof reply === 'string' && reply ? reply : undefined,
      traceparent: typeof traceparent === 'string' ? traceparent : '',
      deadline: typeof deadline === 'number' && deadline > 0 ? deadline : Number.POSITIVE_INFINITY,
      key: typeof key === 'string' && key ? key : undefined,
      message,
      error,
    };
  }
  return out;
}

export function encodeReplies(items: ReplyItem[]): Uint8Array {
  let size = arrayBytes(items.length);
  for (const i of items) size += replyBytes(i);
  const w = new Writer(size);
  w.array(items.length);
  for (const { reply, out } of items) {
    if (out.ok) {
      w.byte(0x93);
      w.str(reply);
      w.byte(2);
      w.raw(out.data);
    } else {
      w.byte(0x95);
      w.str(reply);
      w.byte(0);
      w.str(out.code);
      w.str(out.name);
      w.str(out.message);
    }
  }
  return w.done();
}

/** Throws BadMessage when the payload is not a well-formed reply batch. */
export function decodeReplies(data: Uint8Array): ReceivedReply[] {
  const raw = decode(data);
  if (!Array.isArray(raw)) throw new BadMessage('a Stitch-Batch reply is not an array');
  const out: ReceivedReply[] = new Array(raw.length);
  for (let n = 0; n < raw.length; n++) {
    const r = raw[n] as unknown[];
    if (Array.isArray(r) && typeof r[0] === 'string') {
      const reply = r[0];
      if (r[1] === 2 && r.length === 3) {
        out[n] = { reply, ok: true, value: r[2] };
        continue;
      }
      if (r[1] === 1 && r[2] instanceof Uint8Array) {
        try {
          out[n] = { reply, ok: true, value: decode(r[2]) };
        } catch (err) {
          const bad = err as BadMessage;
          out[n] = {
            reply,
            ok: false,
            error: { ok: false, code: bad.code, name: bad.name, message: bad.message },
          };
        }
        continue;
      }
      if (r[1] === 0 && r.length === 5) {
        out[n] = {
          reply,
          ok: false,
          error: { ok: false, code: String(r[2]), name: String(r[3]), message: String(r[4]) },
        };
        continue;
      }
    }
    throw new BadMessage(
      'a Stitch-Batch reply item is not [reply, 2, value], [reply, 1, bytes] or [reply, 0, code, name, message]',
    );
  }
  return out;
}
