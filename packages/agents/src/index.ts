export type { AutoscaleOptions, ScalingEvent } from './autoscaler.js';
export { calculate } from './calculator.js';
export type { CoordinatorMetrics, CoordinatorOptions } from './coordinator.js';
export { Coordinator, MAX_DEPLOY_BYTES, MAX_DEPLOYMENTS, MAX_MIGRATIONS } from './coordinator.js';
export { coordinatorActor } from './coordinator-actor.js';
export type { Deployment, Measurement, MigrationEvent, MovePhases } from './deployment.js';
export { deploymentsBucketName, loadDeployment } from './deployment.js';
export type { DeploymentWatch } from './deployment-watch.js';
export { isDeploymentRecord, watchDeployment } from './deployment-watch.js';
export { MAX_EMBED_CHARS } from './embed-op.js';
export { AgentsError, AgentsErrorCode } from './errors.js';
export type { HttpLimits, HttpRequest } from './http.js';
export { HostAllowList, MAX_REDIRECTS, OPERATOR_HTTP_HOSTS_ENV } from './http.js';
export type { HttpToolOptions, HttpToolResult } from './http-tool.js';
export {
  DEFAULT_HTTP_RESPONSE_BYTES,
  DEFAULT_HTTP_TIMEOUT_MS,
  HttpTool,
  MAX_HTTP_BODY_BYTES,
  MAX_HTTP_RESPONSE_BYTES,
  MAX_HTTP_TIMEOUT_MS,
} from './http-tool.js';
export { encodeText, TINY_EXPERTS, TINY_LLAMA } from './llm.js';
export type { PricedUsage } from './llm-call.js';
export { LLM_API_KEY_ENV } from './llm-call.js';
export type { OpBucket } from './memory.js';
export {
  answersBucket,
  closeMemoryConnections,
  kvCacheBucket,
  memoryBucketName,
  useNodeBuckets,
} from './memory.js';
export {
  allowOperatorNatsUrls,
  MAX_ATTR_KEY_CHARS,
  MAX_ATTR_STRING_CHARS,
  MAX_ATTRS,
  MAX_ESTIMATED_MS,
  MAX_NAME_CHARS,
  normaliseNatsUrl,
  OPERATOR_NATS_URLS_ENV,
  validateOpConfig,
} from './op-config.js';
export type { OpReply } from './operator.js';
export { OPERATOR_ACTORS } from './operator.js';
export type { OpConfig } from './ops.js';
export type { NodeClass, OpReplica, PlacedOp } from './placement.js';
export { analyseGraph, classifyNodes, missedSlaNote, planDeployment } from './placement.js';
export type { Finding, PrivacyOptions, Redacted } from './privacy.js';
export { MAX_FILTER_CHARS, MAX_PATTERN_CHARS, MAX_PATTERNS, PrivacyFilter } from './privacy.js';
export type { ChatMessage, LlmCompletion, LlmUsage, RemoteLlmOptions } from './remote-llm.js';
export { LLM_LIMITS, RemoteLlm } from './remote-llm.js';
export type { RemoteTranscriberOptions } from './remote-stt.js';
export { RemoteTranscriber } from './remote-stt.js';
export { reportRequests } from './request-report.js';
export type { RequestStream, StreamEvent, StreamRunOptions } from './request-stream.js';
export type { RequestCounts, RequestSummary } from './request-tally.js';
export type {
  AgentRequest,
  DeploymentSource,
  RequestOutcome,
  RequestResult,
  RunnerOptions,
} from './runner.js';
export { GraphRunner, MAX_REQUEST_LISTENERS } from './runner.js';
export type { SearchHit } from './search.js';
export { DOCUMENTS, embedText, webSearch } from './search.js';
export { SPEECH_OUT_RATE, STT_ENDPOINT_ENV } from './speech-ops.js';
export { MAX_SSE_EVENT_CHARS, SseParser } from './sse.js';
export type { Neighbour, VectorIndexOptions, VectorMetric } from './vector-index.js';
export { VECTOR_LIMITS, VectorIndex } from './vector-index.js';
export type { VectorInsert } from './vector-insert.js';
export { insertVectors } from './vector-insert.js';
export { vectorBucketName } from './vector-objects.js';
export { MAX_JOURNAL_BYTES, VECTOR_DIR_ENV, vectorOperator } from './vector-operator.js';
export { partitionIndexName, vectorPartition } from './vector-partitions.js';
