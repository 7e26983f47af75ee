import { setImmediate } from 'node:timers/promises';
import { argmax, type FusedDecode, Llama, type LlamaOps, type LlamaWeights } from '@stitch/kernels';
import { AgentsError, AgentsErrorCode } from './errors.js';

/** A KV cache handed from prefill to decode: the rows written for the prompt (Llama.exportKv). */
export interface KvCache {
  position: number;
  k: Float32Array;
  v: Float32Array;
}

export interface DecodeJob {
  /** The prompt's KV cache from prefill; without it the prompt is prefilled here. */
  kv?: KvCache;
  prompt: number[];
  /** The first generated token (prefill's). */
  first: number;
  /** Tokens to generate, `first` included. */
  steps: number;
  /** Each token as it is chosen; the sequence is not stepped again until this resolves (back-pressure). */
  emit?: (token: number) => Promise<void>;
  /** Aborted: the sequence leaves before the next step and its KV slot is free. */
  signal?: AbortSignal;
}

export interface BatcherLimits {
  /** KV caches held at once (sequences admitted); each is the model's whole context. */
  maxSequences: number;
  /** Sequences stepped together; 1 decodes one sequence at a time (no batching). */
  maxBatch: number;
  /** Jobs waiting for a KV slot; past this a job is refused with BATCH_QUEUE_FULL. */
  maxQueued: number;
}

export interface BatcherStats {
  active: number;
  queued: number;
  freeSlots: number;
  steps: number;
  tokens: number;
  refused: number;
}

interface Active {
  seq: Llama;
  next: number;
  out: number[];
  job: DecodeJob;
  /** False while its last token's emit is pending: it sits out the steps until then. */
  ready: boolean;
  resolve: (tokens: number[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Continuous batching of greedy decode: the sequences of many requests step together (one
 * `Llama.decodeBatch` per step), joining and leaving between steps. A job is admitted when a KV
 * slot is free, waits in a bounded queue otherwise, and is refused past it.
 */
export class DecodeBatcher {
  readonly #weights: LlamaWeights;
  readonly #ops: LlamaOps;
  readonly #limits: BatcherLimits;
  readonly #fused: FusedDecode | undefined;
  readonly #free: Llama[] = [];
  #made = 0;
  readonly #queue: { admit: (seq: Llama) => void; fail: (err: unknown) => void }[] = [];
  readonly #active = new Set<Active>();
  #running = false;
  #wake: (() => void) | undefined;
  readonly #stats = { steps: 0, tokens: 0, refused: 0 };

  /** With `fused`, a step of one sequence runs the fused decode (few native calls). */
  constructor(weights: LlamaWeights, ops: LlamaOps, limits: BatcherLimits, fused?: FusedDecode) {
    this.#weights = weights;
    this.#ops = ops;
    this.#limits = limits;
    this.#fused = fused;
  }

  stats(): BatcherStats {
    return {
      active: this.#active.size,
      queued: this.#queue.length,
      freeSlots: this.#free.length + (this.#limits.maxSequences - this.#made),
      ...this.#stats,
    };
  }

  /** The job's tokens (`first` first); rejects with the signal's reason when it is aborted. */
  async decode(job: DecodeJob): Promise<number[]> {
    job.signal?.throwIfAborted();
    const seq = await this.#slot(job.signal);
    const out = [job.first];
    try {
      if (job.kv) seq.importKv(job.kv);
      else await seq.prefill(job.prompt);
      job.signal?.throwIfAborted();
      await job.emit?.(job.first);
    } catch (err) {
      this.#release(seq);
      throw err;
    }
    if (job.steps <= 1) {
      this.#release(seq);
      return out;
    }
    // From here the step loop owns the slot: it releases it when the sequence ends, however it ends.
    return new Promise<number[]>((resolve, reject) => {
      this.#active.add({ seq, next: job.first, out, job, ready: true, resolve, reject });
      void this.#run();
    });
  }

  #slot(signal: AbortSignal | undefined): Promise<Llama> {
    const free = this.#free.pop();
    if (free) return Promise.resolve(free);
    if (this.#made < this.#limits.maxSequences) {
      this.#made++;
      return Promise.resolve(new Llama(this.#weights, this.#ops, this.#fused));
    }
    if (this.#queue.length >= this.#limits.maxQueued) {
      this.#stats.refused++;
      return Promise.reject(
        new AgentsError(
          AgentsErrorCode.BatchQueueFull,
          `decode holds ${this.#limits.maxSequences} sequences and ${this.#queue.length} waiting, as many as it admits; retry shortly`,
        ),
      );
    }
    return new Promise((admit, fail) => {
      const waiter = { admit, fail };
      this.#queue.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const at = this.#queue.indexOf(waiter);
          if (at >= 0) {
            this.#queue.splice(at, 1);
            fail(signal.reason);
          }
        },
        { once: true },
      );
    });
  }

  #release(seq: Llama): void {
    const next = this.#queue.shift();
    if (next) next.admit(seq);
    else this.#free.push(seq);
  }

  #finish(a: Active, err?: unknown): void {
    this.#active.delete(a);
    this.#release(a.seq);
    if (err === undefined) a.resolve(a.out);
    else a.reject(err);
  }

  /** The step loop: runs while any sequence is active. */
  async #run(): Promise<void> {
    this.#wake?.();
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#active.size > 0) {
        // The last step's emits that did not have to wait (the reader had room) settle first, so
        // their sequences join this step instead of the one after it.
        await setImmediate();
        const batch: Active[] = [];
        for (const a of this.#active) {
          if (a.job.signal?.aborted) this.#finish(a, a.job.signal.reason);
          else if (a.ready && batch.length < this.#limits.maxBatch) batch.push(a);
        }
        if (batch.length === 0) {
          if (this.#active.size > 0) await new Promise<void>((r) => (this.#wake = r));
          this.#wake = undefined;
          continue;
        }
        let logits: Float32Array[];
        try {
          logits =
            batch.length === 1
              ? [await batch[0]!.seq.decode(batch[0]!.next)]
              : await Llama.decodeBatch(
                  batch.map((a) => a.seq),
                  batch.map((a) => a.next),
                );
        } catch (err) {
          for (const a of batch) this.#finish(a, err);
          continue;
        }
        this.#stats.steps++;
        for (const [i, a] of batch.entries()) this.#advance(a, argmax(logits[i]!));
      }
    } finally {
      this.#running = false;
    }
  }

  #advance(a: Active, token: number): void {
    a.out.push(token);
    a.next = token;
    this.#stats.tokens++;
    const emitted = a.job.emit?.(token);
    const done = a.out.length >= a.job.steps;
    if (!emitted) {
      if (done) this.#finish(a);
      return;
    }
    a.ready = false;
    emitted.then(
      () => {
        if (done) this.#finish(a);
        else a.ready = true;
        this.#wake?.();
      },
      (err) => {
        this.#finish(a, err);
        this.#wake?.();
      },
    );
  }
}
