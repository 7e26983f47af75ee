import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import {
  type AgentRequest,
  type Deployment,
  GraphRunner,
  type RequestOutcome,
  type RequestResult,
  type RunnerOptions,
  reportRequests,
  type StreamEvent,
} from '@stitch/agents';
import type { Cluster } from '@stitch/runtime';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { bearerHook, checkAccess } from './access.js';
import { Admission } from './admission.js';
import {
  agentRequestOf,
  CHAT_SCHEMA,
  type ChatBody,
  chunk,
  completion,
  contentOf,
  type Head,
  stitchInfo,
  usageOf,
} from './chat.js';
import { Deployments } from './deployments.js';
import { ServeError, ServeErrorCode } from './errors.js';
import { failure, failureOf, type HttpFailure } from './http-errors.js';
import { listen } from './listen.js';

export interface ApiServerOptions {
  cluster: Cluster;
  /** @default '127.0.0.1'; any other host needs `apiKey` */
  host?: string;
  /** @default 0 (a free port; see `url`) */
  port?: number;
  /** Bearer token (API key) every request must carry; required when `host` is not loopback. */
  apiKey?: string;
  /** Coordinator actor (`stitch-coordinator/<id>`) told each request's measurements and outcome. @default 'main' */
  coordinatorId?: string;
  /** Requests in flight per deployment; one more is answered 429 with Retry-After. @default 64 */
  maxInFlight?: number;
  /** Largest request body. @default 1 MiB */
  bodyLimitBytes?: number;
  /** How the graph runner asks operators (per-ask timeout, retries, fast or durable). */
  runner?: RunnerOptions;
  /** Told each request's outcome as it ends (GraphRunner.onRequest), e.g. @stitch/telemetry's observeRequests(). */
  onRequest?: (outcome: RequestOutcome) => void;
}

export interface ApiServer {
  /** `http://host:port` the server listens on. */
  readonly url: string;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

export const DEFAULT_MAX_IN_FLIGHT = 64;
export const DEFAULT_BODY_LIMIT_BYTES = 1 << 20;
/** A comment line on an open stream this often, so proxies do not cut a long wait. */
const KEEP_ALIVE_MS = 10_000;

function positiveInt(v: number | undefined, fallback: number, what: string): number {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new ServeError(ServeErrorCode.Options, `${what} must be a positive integer, found ${String(v)}`);
  return n;
}

function send(reply: FastifyReply, f: HttpFailure): FastifyReply {
  if (f.retryAfterS !== undefined) reply.header('retry-after', String(f.retryAfterS));
  return reply.code(f.status).send(f.body);
}

/**
 * An OpenAI-compatible HTTP API over the cluster's deployments: each deployment is a model,
 * `POST /v1/chat/completions` runs one request through its graph (whole, or as server-sent events).
 */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  checkAccess(host, options.apiKey);
  const admission = new Admission(positiveInt(options.maxInFlight, DEFAULT_MAX_IN_FLIGHT, 'maxInFlight'));
  const bodyLimit = positiveInt(options.bodyLimitBytes, DEFAULT_BODY_LIMIT_BYTES, 'bodyLimitBytes');
  const { cluster } = options;
  const deployments = new Deployments(cluster);
  const runner = new GraphRunner(cluster, options.runner);
  const coordinator = cluster.ref({ type: 'stitch-coordinator', id: options.coordinatorId ?? 'main' });
  // Each request's measurements and outcome go to the coordinator, which corrects its estimates and
  // counts SLA attainment.
  runner.onRequest(reportRequests(coordinator));
  if (options.onRequest) runner.onRequest(options.onRequest);

  const app = Fastify({
    logger: false,
    bodyLimit,
    forceCloseConnections: true,
    // Strict: a string is not coerced into a boolean, unknown fields are left as they are.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  // Fastify also parses text/plain; this API takes JSON only, so anything else is a 415.
  app.removeContentTypeParser('text/plain');
  if (options.apiKey !== undefined) app.addHook('onRequest', bearerHook(options.apiKey));
  app.setErrorHandler((err, _request, reply) => send(reply, failureOf(err, admission.retryAfterS())));
  app.setNotFoundHandler((request, reply) =>
    send(reply, failure(404, `no route ${request.method} ${request.url.split('?')[0]}`, 'not_found')),
  );

  const model = (d: Deployment, updatedAt: number) => ({
    id: d.name,
    object: 'model',
    created: Math.floor(updatedAt / 1000),
    owned_by: 'stitch',
  });
  app.get('/v1/models', async () => ({
    object: 'list',
    data: (await deployments.list()).map((l) => model(l.deployment, l.updatedAt)),
  }));
  app.get<{ Params: { model: string } }>('/v1/models/:model', async (request) => {
    const l = await deployments.get(request.params.model);
    if (!l) throw notFound(request.params.model);
    return model(l.deployment, l.updatedAt);
  });

  /** The deployment named `name`, with a slot in flight held for it (released by the caller). */
  const admit = async (name: string): Promise<Deployment> => {
    const l = await deployments.get(name);
    if (!l) throw notFound(name);
    if (!admission.enter(name)) {
      throw new ServeError(
        ServeErrorCode.Overloaded,
        `model ${name} has ${admission.limit} requests in flight, as many as this server admits; retry after the Retry-After seconds`,
      );
    }
    return l.deployment;
  };
  /** A request's answer, counted against the model's admission. */
  const track = async (d: Deployment, answer: Promise<RequestResult>) => {
    const t0 = performance.now();
    try {
      return await answer;
    } finally {
      admission.leave(d.name, performance.now() - t0);
    }
  };

  app.post<{ Body: ChatBody }>(
    '/v1/chat/completions',
    { schema: { body: CHAT_SCHEMA } },
    async (req, reply) => {
      const body = req.body;
      const request = agentRequestOf(body);
      const d = await admit(body.model);
      const head: Head = {
        id: `chatcmpl-${randomUUID()}`,
        created: Math.floor(Date.now() / 1000),
        model: d.name,
      };
      if (body.stream !== true)
        return completion(head, request, await track(d, runner.run(d, head.id, request)));
      const streamed = runner.stream(d, head.id, request);
      const result = track(d, streamed.result);
      // Awaited after the events; a failure that ends them first is reported from them.
      result.catch(() => undefined);
      reply.hijack();
      // A client that goes away cancels the request at every operator still working on it.
      reply.raw.once('close', () => streamed.cancel());
      await stream(
        reply.raw,
        head,
        request,
        streamed,
        result,
        body.stream_options?.include_usage === true,
        () => admission.retryAfterS(),
      );
      return reply;
    },
  );

  const url = await listen(app, host, options.port ?? 0);
  return { url, app, close: () => app.close() };
}

function notFound(name: string): ServeError {
  return new ServeError(
    ServeErrorCode.ModelNotFound,
    `model "${name}" is not a deployment of this cluster; GET /v1/models lists them`,
  );
}

/**
 * Server-sent events in OpenAI's chunk format: the role at once; while the graph runs, the LLM's text
 * as it is generated, each piece a chunk's `delta.content`; then a chunk with `finish_reason` and the
 * extension field `stitch` (the graph's whole answer, where it ran). A graph without LLM text sends
 * its answer as one content chunk at the end.
 */
async function stream(
  res: ServerResponse,
  head: Head,
  request: AgentRequest,
  events: AsyncIterable<StreamEvent>,
  result: Promise<RequestResult>,
  includeUsage: boolean,
  retryAfterS: () => number,
): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  const event = (v: unknown) => res.write(`data: ${JSON.stringify(v)}\n\n`);
  event(chunk(head, { role: 'assistant', content: '' }));
  const keepAlive = setInterval(() => res.write(': the graph is running\n\n'), KEEP_ALIVE_MS);
  try {
    let streamed = false;
    for await (const e of events) {
      const text = (e.item as { text?: unknown } | null)?.text;
      if (typeof text === 'string' && text !== '') {
        streamed = true;
        event(chunk(head, { content: text }));
      }
    }
    const r = await result;
    if (!streamed) event(chunk(head, { content: contentOf(r.answer) }));
    event(chunk(head, {}, 'stop', { stitch: stitchInfo(r) }));
    if (includeUsage)
      event({ ...head, object: 'chat.completion.chunk', choices: [], usage: usageOf(request, r.answer) });
    res.write('data: [DONE]\n\n');
  } catch (err) {
    // Headers are gone: OpenAI's streams carry an error as an event, which its clients raise.
    event(failureOf(err, retryAfterS()).body);
  } finally {
    clearInterval(keepAlive);
    res.end();
  }
}
