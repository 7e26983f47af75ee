/** Every code a `ServeError` can carry; stable, shown to users and in OpenAI-format error bodies. */
export const ServeErrorCode = {
  /** Server options are unusable (port, limits, a non-loopback host without a token). */
  Options: 'SERVE_OPTIONS',
  /** A request body breaks the chat-completions schema or a limit; the message names the field. */
  InvalidRequest: 'SERVE_INVALID_REQUEST',
  /** The request names a model that is not a deployment of this cluster. */
  ModelNotFound: 'SERVE_MODEL_NOT_FOUND',
  /** The deployment has as many requests in flight as this server admits, or an operator refused one (Overloaded). */
  Overloaded: 'SERVE_OVERLOADED',
  /** The graph's operators did not answer (timeouts or no responders after the runner's retries). */
  Unavailable: 'SERVE_UNAVAILABLE',
  /** The graph failed the request for another reason; the message carries the operator's error. */
  GraphFailed: 'SERVE_GRAPH_FAILED',
} as const;
export type ServeErrorCode = (typeof ServeErrorCode)[keyof typeof ServeErrorCode];

/** The one error class of @stitch/serve; the message says what to do. */
export class ServeError extends Error {
  readonly code: ServeErrorCode;

  constructor(code: ServeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
