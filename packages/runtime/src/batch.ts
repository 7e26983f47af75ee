import { decode, encode } from './codec.js';
import { BadMessage } from './errors.js';
import type { Outcome } from './state.js';

/**
 * Wire format of coalesced messages (header `Stitch-Batch: <n>`). A batch of one is never sent: a
 * lone message keeps the plain single-message format, so foreign clients see nothing new.
 *
 * Ask/tell batch payload: msgpack array of `[reply | null, traceparent, deadline, key | null, body]`,
 * `body` being the message as msgpack bytes; the batch's own headers carry `Stitch-Sender`, and its
 * reply subject is one of the items' (the server's no-responders status comes back on it).
 *
 * Reply batch payload: msgpack array of `[reply, 1, body]` or `[reply, 0, code, name, message]`,
 * published to one of the items' reply subjects (all share the caller's wildcard inbox).
 */

export interface RequestItem {
  reply: string | undefined;
  traceparent: string;
  deadline: number;
  key: string | undefined;
  body: Uint8Array;
}

export interface ReplyItem {
  reply: string;
  out: Outcome;
}

/** Upper bound of the msgpack framing around one item's fields. */
const FRAMING = 48;

/** Strings are counted at 3 bytes a character, the most UTF-8 needs for a UTF-16 unit. */
export function requestBytes(item: RequestItem): number {
  const strings = (item.reply?.length ?? 0) + item.traceparent.length + (item.key?.length ?? 0);
  return item.body.length + 3 * strings + FRAMING;
}

export function replyBytes(item: ReplyItem): number {
  const { out } = item;
  const strings = out.ok ? 0 : out.code.length + out.name.length + out.message.length;
  return (out.ok ? out.data.length : 0) + 3 * (item.reply.length + strings) + FRAMING;
}

export function encodeRequests(items: RequestItem[]): Uint8Array {
  return encode(items.map((i) => [i.reply ?? null, i.traceparent, i.deadline, i.key ?? null, i.body]));
}

/** Throws BadMessage when the payload is not a well-formed request batch. */
export function decodeRequests(data: Uint8Array): RequestItem[] {
  const raw = decode(data);
  if (!Array.isArray(raw)) throw new BadMessage('a Stitch-Batch payload is not an array');
  return raw.map((r: unknown) => {
    if (!Array.isArray(r) || r.length !== 5 || !(r[4] instanceof Uint8Array))
      throw new BadMessage('a Stitch-Batch item is not [reply, traceparent, deadline, key, body]');
    const [reply, traceparent, deadline, key] = r as unknown[];
    return {
      reply: typeof reply === 'string' && reply ? reply : undefined,
      traceparent: typeof traceparent === 'string' ? traceparent : '',
      deadline: typeof deadline === 'number' && deadline > 0 ? deadline : Number.POSITIVE_INFINITY,
      key: typeof key === 'string' && key ? key : undefined,
      body: r[4] as Uint8Array,
    };
  });
}

export function encodeReplies(items: ReplyItem[]): Uint8Array {
  return encode(
    items.map(({ reply, out }) =>
      out.ok ? [reply, 1, out.data] : [reply, 0, out.code, out.name, out.message],
    ),
  );
}

/** Throws BadMessage when the payload is not a well-formed reply batch. */
export function decodeReplies(data: Uint8Array): ReplyItem[] {
  const raw = decode(data);
  if (!Array.isArray(raw)) throw new BadMessage('a Stitch-Batch reply is not an array');
  return raw.map((r: unknown): ReplyItem => {
    if (Array.isArray(r) && typeof r[0] === 'string') {
      if (r[1] === 1 && r[2] instanceof Uint8Array) return { reply: r[0], out: { ok: true, data: r[2] } };
      if (r[1] === 0 && r.length === 5)
        return {
          reply: r[0],
          out: { ok: false, code: String(r[2]), name: String(r[3]), message: String(r[4]) },
        };
    }
    throw new BadMessage(
      'a Stitch-Batch reply item is not [reply, 1, body] or [reply, 0, code, name, message]',
    );
  });
}
