import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Cluster } from '@stitch/runtime';
import Fastify, { type FastifyInstance } from 'fastify';
import { bearerHook, checkAccess } from '../access.js';
import { ServeError, ServeErrorCode } from '../errors.js';
import { failure } from '../http-errors.js';
import { listen } from '../listen.js';
import { PAGE } from './page.js';
import { ClusterView, type DashboardState } from './state.js';

export interface DashboardOptions {
  cluster: Cluster;
  /** @default '127.0.0.1'; any other host needs `apiKey` */
  host?: string;
  /** @default 0 (a free port; see `url`) */
  port?: number;
  /** Key required as `Authorization: Bearer <key>` or `?key=<key>`; required beyond loopback. */
  apiKey?: string;
  /** Coordinator actor (`stitch-coordinator/<id>`) asked for migrations and metrics. @default 'main' */
  coordinatorId?: string;
  /** How often the state is read from the cluster and pushed to open pages. @default 1000 */
  refreshMs?: number;
}

export interface Dashboard {
  readonly url: string;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** Open event streams at most; a page past it gets 503 and can poll `/api/state`. */
export const MAX_DASHBOARD_STREAMS = 32;

/**
 * Bytes an event stream may still hold unsent when the next state is due; a client that left that
 * much unread has stopped reading, and its stream is closed so that it cannot hold the server's memory.
 */
export const MAX_STREAM_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * The open `/api/events` streams. Each event is a whole state, so a stream still flushing an earlier
 * one skips the new one rather than queue it: its client catches up with the state after.
 */
export class EventStreams {
  readonly #open = new Set<ServerResponse>();

  constructor(private readonly maxBufferedBytes = MAX_STREAM_BUFFERED_BYTES) {}

  get size(): number {
    return this.#open.size;
  }

  add(res: ServerResponse): void {
    this.#open.add(res);
    res.on('close', () => this.#open.delete(res));
  }

  send(event: string): void {
    for (const res of this.#open) {
      if (res.writableLength > this.maxBufferedBytes) res.destroy();
      else if (!res.writableNeedDrain) res.write(event);
    }
  }

  end(): void {
    for (const res of this.#open) res.end();
    this.#open.clear();
  }
}

/**
 * The live dashboard: one page (`/`, its script `/dashboard.js`), the cluster's state as JSON
 * (`/api/state`) and as server-sent events (`/api/events`, one `state` event per refresh).
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  checkAccess(host, options.apiKey);
  const refreshMs = options.refreshMs ?? 1000;
  if (!Number.isSafeInteger(refreshMs) || refreshMs < 100)
    throw new ServeError(ServeErrorCode.Options, `refreshMs must be an integer ≥ 100, found ${refreshMs}`);
  // The browser script: this package's dashboard/client.ts, built for a browser beside this module's
  // bundle in dist/ (scripts/bundle-dist.mjs).
  const script = readFileSync(new URL('./dashboard-client.js', import.meta.url), 'utf8');
  const view = new ClusterView(options.cluster, options.coordinatorId ?? 'main');
  const streams = new EventStreams();
  let latest: Promise<DashboardState> | undefined;
  let latestAt = 0;
  const state = () => {
    if (!latest || Date.now() - latestAt >= refreshMs) {
      latestAt = Date.now();
      latest = view.state();
      latest.catch(() => {
        latest = undefined;
      });
    }
    return latest;
  };
  const push = async () => {
    if (streams.size === 0) return;
    const s = await state().catch(() => undefined);
    if (!s) return;
    streams.send(`event: state\ndata: ${JSON.stringify(s)}\n\n`);
  };
  // Started once the server listens: a listen that fails runs no onClose, and would leave it running.
  let timer: NodeJS.Timeout | undefined;

  const app = Fastify({ logger: false, bodyLimit: 1024, forceCloseConnections: true });
  if (options.apiKey !== undefined) {
    // The page and its script hold no data; what they fetch from /api/ does.
    const hook = bearerHook(options.apiKey, true);
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.startsWith('/api/')) return hook(request, reply);
    });
  }
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(failure(404, `no route ${request.method} ${request.url.split('?')[0]}`, 'not_found').body),
  );
  app.get('/', (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
  app.get('/dashboard.js', (_req, reply) => reply.type('text/javascript; charset=utf-8').send(script));
  app.get('/favicon.ico', (_req, reply) => reply.code(204).send());
  app.get('/api/state', () => state());
  app.get('/api/events', async (_request, reply) => {
    if (streams.size >= MAX_DASHBOARD_STREAMS) {
      const f = failure(
        503,
        `${MAX_DASHBOARD_STREAMS} pages are open; poll /api/state instead`,
        'too_many_streams',
      );
      return reply.code(503).send(f.body);
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    streams.add(res);
    const s = await state().catch(() => undefined);
    if (s) res.write(`event: state\ndata: ${JSON.stringify(s)}\n\n`);
  });
  app.addHook('onClose', async () => {
    clearInterval(timer);
    streams.end();
  });

  const url = await listen(app, host, options.port ?? 0);
  timer = setInterval(() => void push(), refreshMs);
  return { url, app, close: () => app.close() };
}
