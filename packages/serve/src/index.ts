export type { ApiServer, ApiServerOptions } from './api-server.js';
export { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_MAX_IN_FLIGHT, startApiServer } from './api-server.js';
export { CHAT_LIMITS } from './chat.js';
export { ServeError, ServeErrorCode } from './errors.js';
export type { OpenAiErrorBody } from './http-errors.js';
