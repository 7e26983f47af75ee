import type { Msg, NatsConnection } from '@nats-io/transport-node';

/**
 * Every place stitch reaches into nats.js internals lives in this file. Each is a fast path with a
 * public fallback, taken only when all of these hold: STITCH_NATS_FAST_PATH is not `0`, the
 * connection's nats.js reports a 3.x transport (the layout read here is nats-core 3.x's), and the
 * internal has the expected shape at run time. `test/runtime-*.test.ts` run with the fast paths on
 * and off, and fail when a nats.js upgrade moves an internal.
 */
export const natsFastPathEnabled = process.env.STITCH_NATS_FAST_PATH !== '0';

/** The parts of nats-core 3.x's protocol handler (`nc.protocol`) that a direct publish uses. */
interface Protocol {
  sendCommand(cmd: Uint8Array, ...payloads: Uint8Array[]): void;
  outBytes: number;
  outMsgs: number;
  noMorePublishing: boolean;
  info?: { max_payload?: number; headers?: boolean };
  transport?: { version?: unknown };
}

const CRLF = new Uint8Array([13, 10]);
const WHITESPACE = /\s/;
const protocols = new WeakMap<NatsConnection, Protocol | null>();

function protocolOf(nc: NatsConnection): Protocol | null {
  let protocol = protocols.get(nc);
  if (protocol === undefined) {
    const held = (nc as unknown as { protocol?: Partial<Protocol> }).protocol;
    const version = held?.transport?.version;
    protocol =
      natsFastPathEnabled &&
      typeof version === 'string' &&
      version.startsWith('3.') &&
      typeof held?.sendCommand === 'function' &&
      typeof held.outBytes === 'number' &&
      typeof held.outMsgs === 'number' &&
      typeof held.noMorePublishing === 'boolean'
        ? (held as Protocol)
        : null;
    protocols.set(nc, protocol);
  }
  return protocol;
}

/**
 * Publishes `data` as nats.js `publish` does (same bytes, same buffering and flush, same counters),
 * with the protocol line and the header block (`block`, as `MsgHdrs.toString()` gives it) encoded by
 * one `Buffer.from`. nats.js encodes the line with a TextEncoder, which allocates a fresh ArrayBuffer
 * per message, and the headers on their own: on the serial path that was about 2 of the 16 µs a
 * caller spent between a reply and its next request.
 *
 * Sends nothing and returns false where `nc.publish` must do it instead: the fast path is off, nats.js
 * keeps its protocol handler some other way, or one of nats.js's checks would fail (closed or
 * draining connection, empty or spaced subject, no header support, max_payload), so that the caller
 * then gets nats.js's error.
 */
export function publishDirect(
  nc: NatsConnection,
  subject: string,
  data: Uint8Array,
  reply: string | undefined,
  block: string | undefined,
): boolean {
  const protocol = protocolOf(nc);
  const info = protocol?.info;
  if (!protocol || !info || protocol.noMorePublishing || nc.isClosed()) return false;
  if (!subject || WHITESPACE.test(subject) || (reply && WHITESPACE.test(reply))) return false;
  let line: string;
  let size = data.length;
  if (block !== undefined) {
    if (!info.headers) return false;
    const blockSize = Buffer.byteLength(block);
    size += blockSize;
    line = reply
      ? `HPUB ${subject} ${reply} ${blockSize} ${size}\r\n${block}`
      : `HPUB ${subject} ${blockSize} ${size}\r\n${block}`;
  } else {
    line = reply ? `PUB ${subject} ${reply} ${size}\r\n` : `PUB ${subject} ${size}\r\n`;
  }
  if (info.max_payload !== undefined && size > info.max_payload) return false;
  protocol.outBytes += size;
  protocol.outMsgs++;
  protocol.sendCommand(Buffer.from(line), data, CRLF);
  return true;
}

/** The received bytes and the length of the header block at their start, where nats-core 3.x keeps them. */
function heldHeaders(m: Msg): { data: Uint8Array; size: number } | undefined {
  if (!natsFastPathEnabled) return undefined;
  const held = m as unknown as { _rdata?: unknown; _msg?: { hdr?: unknown } };
  const data = held._rdata;
  const size = held._msg?.hdr;
  if (!(data instanceof Uint8Array) || typeof size !== 'number' || size <= 0 || size > data.length)
    return undefined;
  return { data, size };
}

/**
 * The header block of a received message where nats.js keeps it (`_rdata` up to `_msg.hdr`). Reading
 * it directly skips nats.js `MsgHdrs`, whose decode canonicalises and validates every header: 6 of the
 * 29 µs an actor spent on a message on the serial path. Undefined when the fast path is off or nats.js
 * keeps it some other way; callers then read `m.headers`.
 */
export function headerBlock(m: Msg): Uint8Array | undefined {
  const held = heldHeaders(m);
  return held?.data.subarray(0, held.size);
}

/**
 * The header block as text, and its bytes (from offset 0 up to `size`); nats.js receives into
 * Buffers, which decode without a view made first.
 */
export function headerTextOf(m: Msg): { text: string; bytes: Buffer; size: number } | undefined {
  const held = heldHeaders(m);
  if (!held) return undefined;
  const { data, size } = held;
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, size);
  return { text: bytes.toString('utf8', 0, size), bytes, size };
}

/**
 * The subject of a received message as nats.js received it (`_msg.subject`), before it decodes it;
 * undefined when the fast path is off or nats.js keeps it otherwise (callers then read `m.subject`).
 */
export function subjectBytes(m: Msg): Uint8Array | undefined {
  if (!natsFastPathEnabled) return undefined;
  const subject = (m as unknown as { _msg?: { subject?: unknown } })._msg?.subject;
  return subject instanceof Uint8Array ? subject : undefined;
}

/**
 * The core message a JetStream message wraps (`JsMsg.msg` in @nats-io/jetstream 3.x), so that its
 * headers can be read in one pass like a fast-mode message's (`readMessageHeaders`) instead of through
 * `MsgHdrs`; undefined when the fast path is off or the JsMsg keeps it otherwise.
 */
export function coreMsg(m: unknown): Msg | undefined {
  if (!natsFastPathEnabled) return undefined;
  const msg = (m as { msg?: unknown }).msg as Msg | undefined;
  return msg && typeof msg === 'object' && msg.data instanceof Uint8Array ? msg : undefined;
}

const ACK = new Uint8Array([43, 65, 67, 75]); // +ACK

/**
 * Acknowledges a JetStream message by publishing `+ACK` to its reply subject directly (what
 * `JsMsg.ack()` sends, through `nc.publish`); false when the fast path cannot, and the caller then
 * calls `ack()`.
 */
export function ackDirect(nc: NatsConnection, m: unknown): boolean {
  const reply = coreMsg(m)?.reply;
  return !!reply && publishDirect(nc, reply, ACK, undefined, undefined);
}

/**
 * The inbox prefix the connection was opened with (nats.js keeps its options on the connection; its
 * default is `_INBOX`), so that an inbox of stitch's own stays within the connection's permissions;
 * undefined when the fast path is off, the connection is not nats.js 3.x's, or it keeps its options
 * otherwise.
 */
export function inboxPrefixOf(nc: NatsConnection): string | undefined {
  if (!protocolOf(nc)) return undefined;
  const options = (nc as unknown as { options?: { inboxPrefix?: unknown } }).options;
  if (!options || typeof options !== 'object') return undefined;
  const prefix = options.inboxPrefix ?? '_INBOX';
  return typeof prefix === 'string' && prefix ? prefix : undefined;
}

/**
 * The inbox a nats.js 3.x pull consumer's `consume()` pulls with (`PullConsumerMessagesImpl.inbox`,
 * fixed for its life), so that a migration's target can take over the pulls the source cannot
 * cancel; undefined when the fast path is off or nats.js keeps it otherwise.
 */
export function pullInboxOf(messages: unknown): string | undefined {
  if (!natsFastPathEnabled) return undefined;
  const inbox = (messages as { inbox?: unknown } | undefined)?.inbox;
  return typeof inbox === 'string' && inbox.length > 0 && !WHITESPACE.test(inbox) ? inbox : undefined;
}

/**
 * Runs `fn` with the connection's inbox prefix (nats.js keeps its options on the connection) set to
 * `prefix`, then sets it back: a pull consumer's `consume()` takes its inbox from it, synchronously,
 * and has no option of its own for it. Runs `fn` as it is when the fast path is off or nats.js keeps
 * its options otherwise.
 */
export function withInboxPrefix<T>(nc: NatsConnection, prefix: string, fn: () => T): T {
  if (inboxPrefixOf(nc) === undefined) return fn();
  const options = (nc as unknown as { options: { inboxPrefix?: string } }).options;
  const before = options.inboxPrefix;
  options.inboxPrefix = prefix;
  try {
    return fn();
  } finally {
    options.inboxPrefix = before;
  }
}
