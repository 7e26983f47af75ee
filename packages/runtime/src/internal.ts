// For sibling packages and this package's tests; not part of the public API.
export { Assembler, split } from './chunks.js';
export { decode, encode } from './codec.js';
export { envelopeHeaders, isTraceparent, newTraceparent } from './envelope.js';
export { Mailbox } from './mailbox.js';
export { names } from './names.js';
