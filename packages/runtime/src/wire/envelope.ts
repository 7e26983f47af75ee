import { randomFillSync } from 'node:crypto';
import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { rebuildError, type StitchError } from '../errors.js';
import { headerTextOf } from './nats-internals.js';
import { checkValue, OutgoingHeaders } from './outgoing-headers.js';
import { WIRE_VERSION } from './version.js';

/** Header names of the stitch envelope; every message carries traceparent, sender, deadline and wire. */
export const H = {
  traceparent: 'traceparent',
  idempotencyKey: 'Stitch-Idempotency-Key',
  sender: 'Stitch-Sender',
  deadline: 'Stitch-Deadline',
  /** The sender's wire protocol version, `<major>.<minor>` (version.ts says what a receiver takes). */
  wire: 'Stitch-Wire',
  /**
   * The sender's count of the fast-mode messages it published (any actor), on each message: a
   * migration's target orders by it what one sender's messages reached source and target both.
   */
  seq: 'Stitch-Seq',
  /**
   * The sender's count (Stitch-Seq) of its previous fast-mode message to the same actor, when it knows
   * it: a migration's target runs a message at once when that one is known run or queued.
   */
  prev: 'Stitch-Prev',
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
  /** The sender's message count (Stitch-Seq), when it sent one: rises with each message it publishes. */
  seq?: number;
  /**
   * The sender's count of its previous message to the same actor (Stitch-Prev), below seq, when it
   * knows it: 0 when it sent that actor nothing before.
   */
  prev?: number;
  /**
   * An item of a coalesced message (Stitch-Batch) but its last: more items with the same count follow.
   * Set by the receiver, never sent as a header.
   */
  more?: true;
}

// Trace ids come from a pooled hex string: one random fill and one hex conversion per 256 ids.
const POOLED_IDS = 256;
const pool = Buffer.alloc(24 * POOLED_IDS);
let hexPool = '';
let poolAt = POOLED_IDS;

/** A fresh W3C traceparent (`00-<trace id>-<parent id>-01`; `-00` when not sampled). */
export function newTraceparent(sampled = true): string {
  if (poolAt >= POOLED_IDS) {
    randomFillSync(pool);
    hexPool = pool.toString('hex');
    poolAt = 0;
  }
  const at = 48 * poolAt++;
  return `00-${hexPool.slice(at, at + 32)}-${hexPool.slice(at + 32, at + 48)}-${sampled ? '01' : '00'}`;
}

/** 1 at the character codes of 0-9 and a-f. */
const HEX_DIGIT = new Uint8Array(128);
for (const c of '0123456789abcdef') HEX_DIGIT[c.charCodeAt(0)] = 1;

/** Whether `value[from, to)` is lower-case hex digits. */
function hexRun(value: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = value.charCodeAt(i);
    if (c > 127 || HEX_DIGIT[c] === 0) return false;
  }
  return true;
}

/**
 * `vv-<32 hex>-<16 hex>-ff`, checked by hand: it runs for every message a traced node receives, and a
 * regex costs more. A table per character and no per-position branch: in a loop on this VM 150 ns
 * against 250 for the regex and 370 for comparing ranges at every position.
 */
export function isTraceparent(value: string): boolean {
  return (
    value.length === 55 &&
    value.charCodeAt(2) === 45 && // '-'
    value.charCodeAt(35) === 45 &&
    value.charCodeAt(52) === 45 &&
    hexRun(value, 0, 2) &&
    hexRun(value, 3, 35) &&
    hexRun(value, 36, 52) &&
    hexRun(value, 53, 55)
  );
}

const WIRE_LINE = `\r\n${H.wire}: ${WIRE_VERSION}`;

/**
 * The header block `envelopeHeaders(env)` encodes to, built in one template with no headers object:
 * every fast-mode send carries it (in a loop, 120 ns against 250–270 ns for the object and its text;
 * steps on the serial path cost 3–5× their loop figure). Values are checked as OutgoingHeaders
 * checks them.
 */
export function envelopeBlock(env: Envelope): string {
  let block = `NATS/1.0\r\n${H.traceparent}: ${checkValue(H.traceparent, env.traceparent)}`;
  block += `\r\n${H.sender}: ${checkValue(H.sender, env.sender)}\r\n${H.deadline}: ${env.deadline}`;
  block += WIRE_LINE;
  if (env.seq !== undefined) block += `\r\n${H.seq}: ${env.seq}`;
  if (env.prev !== undefined) block += `\r\n${H.prev}: ${env.prev}`;
  if (env.idempotencyKey !== undefined)
    block += `\r\n${H.idempotencyKey}: ${checkValue(H.idempotencyKey, env.idempotencyKey)}`;
  return `${block}\r\n\r\n`;
}

export function envelopeHeaders(env: Envelope): MsgHdrs {
  const h = new OutgoingHeaders();
  h.append(H.traceparent, env.traceparent);
  h.append(H.sender, env.sender);
  h.append(H.deadline, String(env.deadline));
  h.append(H.wire, WIRE_VERSION);
  if (env.seq !== undefined) h.append(H.seq, String(env.seq));
  if (env.prev !== undefined) h.append(H.prev, String(env.prev));
  if (env.idempotencyKey !== undefined) h.append(H.idempotencyKey, env.idempotencyKey);
  return h;
}

/** The stitch headers of a received message, read in one pass (each MsgHdrs `get` scans every key). */
export interface ReceivedHeaders {
  traceparent?: string;
  sender?: string;
  deadline?: string;
  idempotencyKey?: string;
  /** The sender's wire version; checkWireVersion says whether this build understands it. */
  wire?: string;
  replyTo?: string;
  chunk?: string;
  batch?: string;
  seq?: string;
  prev?: string;
}

const FIELDS: Record<string, keyof ReceivedHeaders> = {
  [H.traceparent]: 'traceparent',
  [H.sender]: 'sender',
  [H.deadline]: 'deadline',
  [H.idempotencyKey]: 'idempotencyKey',
  [H.wire]: 'wire',
  [H.replyTo]: 'replyTo',
  [H.chunk]: 'chunk',
  [H.batch]: 'batch',
  [H.seq]: 'seq',
  [H.prev]: 'prev',
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

/** The stitch header names by length, so a received key is compared only with names as long as it. */
const NAMES_BY_LENGTH: [string, keyof ReceivedHeaders][][] = [];
for (const [name, field] of Object.entries(FIELDS)) {
  if (!NAMES_BY_LENGTH[name.length]) NAMES_BY_LENGTH[name.length] = [];
  NAMES_BY_LENGTH[name.length]!.push([name, field]);
}

/** The field of the stitch header whose name is `text[at, colon)`, if it is one. */
function fieldAt(text: string, at: number, colon: number): keyof ReceivedHeaders | undefined {
  const names = NAMES_BY_LENGTH[colon - at];
  if (names) for (const [name, field] of names) if (text.startsWith(name, at)) return field;
  return undefined;
}

/**
 * `text[from, to)` trimmed as String.prototype.trim does; nats.js writes one space after the colon.
 * With `bytes` (the block's, when every character of it is one byte) the value is copied out of them:
 * a slice of the text holds the whole block for as long as the value lives.
 */
function valueAt(text: string, from: number, to: number, bytes: Buffer | undefined): string {
  if (text.charCodeAt(from) === 32) from++;
  const value = bytes ? bytes.toString('latin1', from, to) : text.slice(from, to);
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  return first <= 32 || first >= 127 || last <= 32 || last >= 127 ? value.trim() : value;
}

/** Same as `readHeaders(m.headers)`: key matched exactly, value trimmed, the first value of a key wins. */
export function readMessageHeaders(m: Msg): ReceivedHeaders {
  const block = headerTextOf(m);
  if (block === undefined || !block.text.startsWith('NATS/1.0')) return readHeaders(m.headers);
  const { text } = block;
  /** As many characters as bytes, none replacing an invalid byte: ASCII, text offsets are byte offsets. */
  let ascii: boolean | undefined;
  const out: ReceivedHeaders = {};
  let at = text.indexOf('\r\n') + 2;
  while (at > 1 && at < text.length) {
    let end = text.indexOf('\r\n', at);
    if (end === -1) end = text.length;
    const colon = text.indexOf(':', at);
    if (colon > -1 && colon < end) {
      const field = fieldAt(text, at, colon);
      if (field !== undefined && out[field] === undefined) {
        // The values kept long after the message (an idempotency key for deduplication, a sender's name
        // for its counts) are copied: as slices they held the whole block (keeping both of 10 000
        // messages cost 377–391 bytes of heap a message instead of 129–147). The rest die with the
        // message, and copying every value cost pipelined throughput.
        let bytes: Buffer | undefined;
        if (field === 'idempotencyKey' || field === 'sender') {
          ascii ??= text.length === block.size && text.indexOf('\uFFFD') === -1;
          if (ascii) bytes = block.bytes;
        }
        const value = valueAt(text, colon + 1, end, bytes);
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
  const seq = messageSeq(r.seq);
  if (seq !== undefined) {
    env.seq = seq;
    const prev = messagePrev(r.prev, seq);
    if (prev !== undefined) env.prev = prev;
  }
  return env;
}

/** A Stitch-Seq value: a positive safe integer, else none (a foreign or hostile sender's is ignored). */
export function messageSeq(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * A Stitch-Prev value: a safe integer from 0 (the sender sent this actor nothing before) to below the
 * message's own count, else none.
 */
export function messagePrev(text: string | undefined, seq: number): number | undefined {
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 0 && n < seq ? n : undefined;
}

/** The error a reply carries, if any; its body is the error message as UTF-8. */
export function replyError(h: MsgHdrs | undefined, body: Uint8Array): StitchError | undefined {
  const code = h?.get(H.errorCode);
  if (!code) return undefined;
  return rebuildError(code, h?.get(H.errorName) || 'Error', Buffer.from(body).toString('utf8'));
}

/** Longest reply subject taken from a header (a stitch inbox is ~40 characters). */
export const MAX_REPLY_SUBJECT = 512;

/**
 * A reply subject that arrived in a header (durable mode's Stitch-Reply-To), or undefined when it is
 * not one a publish can go to: empty tokens, whitespace or control characters, wildcards, too long.
 * NATS itself checks the reply subject of a plain request, so only header-borne ones need this.
 */
export function validReplySubject(value: string | undefined): string | undefined {
  if (!value || value.length > MAX_REPLY_SUBJECT) return undefined;
  let tokenStart = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 32 || c === 127 || c === 42 || c === 62) return undefined; // whitespace, control, '*', '>'
    if (c === 46) {
      if (tokenStart) return undefined; // '.' at the start or after another '.'
      tokenStart = true;
    } else tokenStart = false;
  }
  return tokenStart ? undefined : value;
}
