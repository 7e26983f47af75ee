export type { EmbeddedNats, EmbeddedNatsOptions } from './embedded-nats.js';
export { findNatsServer, startEmbeddedNats } from './embedded-nats.js';
export { NatsServerNotFound, NatsStartFailed, StitchRuntimeError } from './errors.js';
