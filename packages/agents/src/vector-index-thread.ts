// The caller's side of a VectorIndex's worker thread (vector-index-worker.ts): sends requests,
// matches the replies to them, and stops the thread.
import { type Transferable, Worker } from 'node:worker_threads';
import { AgentsError, AgentsErrorCode } from './errors.js';
import type { IndexReplies, IndexReply, IndexRequest, IndexSettings } from './vector-index-worker.js';

// The worker file beside this one: .js when built, .ts when this package's tests run its sources
// under the repository's TypeScript loader (the worker's entry is not an import the loader maps).
const WORKER_EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/**
 * Stops the thread of an index that was dropped without `close` (an actor without a `deactivate`
 * that closes it): the thread holds the whole index, out of the collector's sight.
 */
const dropped = new FinalizationRegistry<IndexThread>((thread) => void thread.close());

interface Waiting {
  resolve: (value: never) => void;
  reject: (e: Error) => void;
}

/**
 * One usearch index on its own thread, started by the first request (an index refused before it
 * gets one, such as a load of a bad file, never starts one). The thread does not keep the process
 * alive while idle (an index someone forgot to close); it does while a request is under way, as any
 * pending I/O does.
 */
export class IndexThread {
  readonly #settings: IndexSettings;
  #worker: Worker | undefined;
  /** Requests sent and not yet answered, oldest first: the thread answers them in order. */
  readonly #waiting: Waiting[] = [];
  /** Why the thread takes no more requests (closed, or it stopped). */
  #stopped: string | undefined;

  /** `owner`: the object whose collection stops the thread, should nobody close it. */
  constructor(settings: IndexSettings, owner: object) {
    this.#settings = settings;
    dropped.register(owner, this, this);
  }

  #start(): Worker {
    const worker = new Worker(new URL(`./vector-index-worker${WORKER_EXT}`, import.meta.url), {
      workerData: this.#settings,
    });
    // The listeners hold this object, never the owner: a running thread keeps them alive.
    worker.on('message', (reply: IndexReply) => this.#settle(reply));
    worker.on('error', (e) => this.#stop(`its thread failed: ${e.message}`));
    worker.on('exit', (code) => this.#stop(`its thread exited with code ${code}`));
    return worker;
  }

  /** Throws VECTOR_INDEX_CLOSED once the thread takes no more requests. */
  checkOpen(): void {
    if (this.#stopped !== undefined) throw closed(this.#stopped);
  }

  /**
   * Sends `request` (the buffers in `transfer` move to the thread: the caller must not use them
   * again) and resolves with the reply; a failure there rejects with VECTOR_INVALID and its message.
   */
  request<O extends IndexRequest['op']>(
    request: Extract<IndexRequest, { op: O }>,
    transfer: Transferable[] = [],
  ): Promise<IndexReplies[O]> {
    return new Promise((resolve, reject) => {
      this.checkOpen();
      this.#worker ??= this.#start();
      this.#waiting.push({ resolve, reject });
      if (this.#waiting.length === 1) this.#worker.ref();
      this.#worker.postMessage(request, transfer);
    });
  }

  #settle(reply: IndexReply): void {
    const waiting = this.#waiting.shift();
    // None: the reply to a request that `close` rejected already, on its way when the thread stopped.
    if (!waiting) return;
    if (this.#waiting.length === 0) this.#worker?.unref();
    if (reply.ok) waiting.resolve(reply.value as never);
    else waiting.reject(new AgentsError(AgentsErrorCode.VectorInvalid, reply.message));
  }

  #stop(why: string): void {
    this.#stopped ??= why;
    for (const w of this.#waiting.splice(0)) w.reject(closed(this.#stopped));
    this.#worker?.unref();
  }

  /** Stops the thread; requests under way or later reject with VECTOR_INDEX_CLOSED. */
  async close(): Promise<void> {
    dropped.unregister(this);
    this.#stop('close() was called');
    await this.#worker?.terminate();
  }
}

const closed = (why: string) =>
  new AgentsError(AgentsErrorCode.VectorIndexClosed, `the vector index takes no more calls: ${why}`);
