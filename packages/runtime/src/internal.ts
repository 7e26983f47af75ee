// For sibling packages and this package's tests; not part of the public API.

export { decodeReplies, decodeRequests, encodeReplies, encodeRequests } from './batch.js';
export { Assembler, split } from './chunks.js';
export { Coalescer } from './coalesce.js';
export { decode, encode } from './codec.js';
export { publishDirect } from './direct-publish.js';
export {
  envelopeBlock,
  envelopeHeaders,
  headerBlock,
  isTraceparent,
  newTraceparent,
  readHeaders,
  readMessageHeaders,
  subjectBytes,
} from './envelope.js';
export { Mailbox } from './mailbox.js';
export { names } from './names.js';
export { OutgoingHeaders } from './outgoing-headers.js';
export { publishOne } from './wire.js';
