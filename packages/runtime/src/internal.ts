// For sibling packages and this package's tests; not part of the public API.

export { decodeReplies, decodeRequests, encodeReplies, encodeRequests } from './wire/batch.js';
export { Assembler, split } from './wire/chunks.js';
export { Coalescer } from './wire/coalesce.js';
export { decode, encode } from './wire/codec.js';
export { publishDirect } from './wire/nats-internals.js';
export {
  envelopeBlock,
  envelopeHeaders,
  headerBlock,
  isTraceparent,
  newTraceparent,
  readHeaders,
  readMessageHeaders,
  subjectBytes,
} from './wire/envelope.js';
export { Mailbox } from './actor/mailbox.js';
export { names } from './cluster/names.js';
export { OutgoingHeaders } from './wire/outgoing-headers.js';
export { publishOne } from './wire/publish.js';
