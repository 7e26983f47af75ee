/** Every code an `AgentsError` can carry; the values are stable: they cross NATS as the error header and are shown to users. */
export const AgentsErrorCode = {
  /** A calculator expression does not parse. */
  CalcSyntax: 'CALC_SYNTAX',
  /** A calculator expression has no finite value. */
  CalcMath: 'CALC_MATH',
  /** An operator actor was asked to run before the coordinator configured it. */
  OpNotConfigured: 'OP_NOT_CONFIGURED',
  /** A `configure` message's OpConfig breaks its schema (types, sizes, estimatedMs cap, an unallowed natsUrl). */
  OpConfigInvalid: 'OP_CONFIG_INVALID',
  /** A tool or op kind this package does not implement. */
  OpUnknown: 'OP_UNKNOWN',
  /** No live node hosts operator actors. */
  DeployNoNodes: 'DEPLOY_NO_NODES',
  /** No placement of the graph on the live nodes is feasible. */
  DeployInfeasible: 'DEPLOY_INFEASIBLE',
  /** A deploy message is malformed (mlir not a string, too large, a bad name) or exceeds the deployment limit. */
  DeployInvalid: 'DEPLOY_INVALID',
  /** No deployment of that name is recorded in the cluster (deploy it first, or check the name). */
  DeploymentUnknown: 'DEPLOYMENT_UNKNOWN',
  /** This coordinator is a standby: another one holds the leader lease (its holder is named). */
  NotLeader: 'COORDINATOR_NOT_LEADER',
  /** An op of a request failed for good (not a timeout that a retry would fix). */
  RequestFailed: 'REQUEST_FAILED',
  /** A runner has as many request listeners as it keeps (GraphRunner.onRequest). */
  TooManyListeners: 'TOO_MANY_LISTENERS',
  /** A privacy filter's configuration is unusable (unknown phone region, bad pattern name or syntax, too many). */
  PrivacyConfigInvalid: 'PRIVACY_CONFIG_INVALID',
  /** Input to an operator is larger than it accepts; the message names the limit. */
  InputTooLarge: 'INPUT_TOO_LARGE',
  /** An HTTP request from a message is malformed (method, URL, headers, body) or a limit setting is out of range. */
  HttpRequestInvalid: 'HTTP_REQUEST_INVALID',
  /** The request, or a redirect it got, names a host the operator is not allowed to reach. */
  HttpHostNotAllowed: 'HTTP_HOST_NOT_ALLOWED',
  /** No complete response (redirects and body included) within the operator's timeout. */
  HttpTimeout: 'HTTP_TIMEOUT',
  /** The response body is larger than the operator's limit; the transfer was aborted there. */
  HttpResponseTooLarge: 'HTTP_RESPONSE_TOO_LARGE',
  /** The connection failed (refused, reset, DNS) or the redirects did not end. */
  HttpFailed: 'HTTP_FAILED',
  /** An LLM endpoint answered with an error status (after the retries a 429 or 5xx gets). */
  LlmFailed: 'LLM_FAILED',
  /** Decode holds as many sequences as it has KV slots and its queue is full: retry shortly. */
  BatchQueueFull: 'BATCH_QUEUE_FULL',
  /** A speech operator's input or engine failed: no audio in the request, audio that is not a WAV, a transcription endpoint's error, espeak-ng or pocketsphinx missing. */
  SpeechFailed: 'SPEECH_FAILED',
  /** An LLM endpoint's answer is not a chat completion (bad JSON or SSE, no [DONE], an oversized event). */
  LlmResponseInvalid: 'LLM_RESPONSE_INVALID',
  /** A vector index option, vector, key or query is malformed or out of range (dimension, count, finiteness). */
  VectorInvalid: 'VECTOR_INVALID',
  /** A vector insert would take the index past its `max_vectors`. */
  VectorIndexFull: 'VECTOR_INDEX_FULL',
  /** A restored vector operator cannot get its index (object missing or changed in the vector store). */
  VectorIndexUnavailable: 'VECTOR_INDEX_UNAVAILABLE',
  /** A `VectorIndex` was called after `close()`, or its worker thread stopped; make a new one. */
  VectorIndexClosed: 'VECTOR_INDEX_CLOSED',
} as const;
export type AgentsErrorCode = (typeof AgentsErrorCode)[keyof typeof AgentsErrorCode];

/** The one error class of @stitch/agents; the message says what to do. */
export class AgentsError extends Error {
  readonly code: AgentsErrorCode;

  constructor(code: AgentsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
