// For sibling packages, benchmarks and this package's tests; not part of the public API.

export { Mailbox } from './actor/mailbox.js';
export { names } from './cluster/names.js';
export { spanRecorder } from './tracing.js';
export { decodeReplies, decodeRequests, encodeReplies, encodeRequests } from './wire/batch.js';
export { Assembler, split } from './wire/chunks.js';
export { Coalescer } from './wire/coalesce.js';
export { decode, encode } from './wire/codec.js';
export {
  envelopeBlock,
  envelopeHeaders,
  isTraceparent,
  newTraceparent,
  readHeaders,
  readMessageHeaders,
} from './wire/envelope.js';
export { headerBlock, natsFastPathEnabled, publishDirect, subjectBytes } from './wire/nats-internals.js';
export { OutgoingHeaders } from './wire/outgoing-headers.js';
export { publishOne } from './wire/publish.js';
export { WIRE_VERSION } from './wire/version.js';
