import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ensureWorker, INSTALL_HINT } from './build-worker.js';
import { decodeAndResample } from './decode-pool.js';
import { SpeechError, SpeechErrorCode } from './errors.js';
import type { SpeechToText, Transcript } from './speech-to-text.js';
import { durationS, MAX_AUDIO_SECONDS, type Pcm } from './wav.js';

/** Where Debian's pocketsphinx-en-us puts the US English model. */
export const DEBIAN_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
/** The rate the acoustic model was trained at; audio is resampled to it. */
export const RECOGNISER_RATE = 16_000;

export interface PocketsphinxOptions {
  /** Folder holding `en-us/` (acoustic model), `en-us.lm.bin` and `cmudict-en-us.dict`. @default DEBIAN_MODEL_DIR */
  modelDir?: string;
  /** Utterances waiting behind the one being decoded, at most. @default 16 */
  maxQueue?: number;
  /** Deadline of one utterance (decoding is about real time or faster). @default 60 000 */
  timeoutMs?: number;
  /** Deadline of a worker's start: loading the model (about a second); past it the worker is killed. @default 30 000 */
  startTimeoutMs?: number;
}

/** Whether the idle worker keeps this process alive: only while an utterance is in it. */
function hold(child: ChildProcessWithoutNullStreams, on: boolean): void {
  for (const h of [child, child.stdin, child.stdout, child.stderr] as unknown as {
    ref(): void;
    unref(): void;
  }[])
    on ? h.ref() : h.unref();
}

interface Worker {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with the worker's next line; rejects when it exits first. */
  nextLine(): Promise<string>;
}

/**
 * Speech-to-text on pocketsphinx 0.8 in one long-lived worker process: the model loads once, each
 * utterance is streamed to it and decoded in order. A worker that fails or times out is killed and
 * the next utterance starts a fresh one; the caller of the failed one gets a typed error.
 */
export class PocketsphinxRecognizer implements SpeechToText {
  readonly engine = 'pocketsphinx';
  readonly #modelDir: string;
  readonly #maxQueue: number;
  readonly #timeoutMs: number;
  readonly #startTimeoutMs: number;
  #worker: Promise<Worker> | undefined;
  /** Ends the start under way (kills its worker): set while a worker loads its model. */
  #cancelStart: (() => void) | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #waiting = 0;
  #closed = false;

  constructor(options: PocketsphinxOptions = {}) {
    this.#modelDir = options.modelDir ?? DEBIAN_MODEL_DIR;
    this.#maxQueue = options.maxQueue ?? 16;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#startTimeoutMs = options.startTimeoutMs ?? 30_000;
  }

  /** `audio`: WAV bytes or mono samples, any rate (resampled to 16 kHz). */
  transcribe(audio: Uint8Array | Pcm): Promise<Transcript> {
    if (this.#closed)
      return Promise.reject(new SpeechError(SpeechErrorCode.Closed, 'the recogniser is closed'));
    if (!(audio instanceof Uint8Array) && durationS(audio) > MAX_AUDIO_SECONDS)
      return Promise.reject(
        new SpeechError(SpeechErrorCode.WavInvalid, `audio longer than ${MAX_AUDIO_SECONDS} s`),
      );
    if (this.#waiting >= this.#maxQueue)
      return Promise.reject(
        new SpeechError(SpeechErrorCode.Busy, `${this.#waiting} utterances are already waiting; retry later`),
      );
    this.#waiting++;
    const before = this.#tail;
    // Decoded while the utterances ahead of it are transcribed: a bad WAV is refused at once, not behind them.
    const job = decodeAndResample(audio, RECOGNISER_RATE).then(async (pcm) => {
      await before;
      return this.#decode(pcm, durationS(pcm));
    });
    this.#tail = Promise.all([before, job.catch(() => undefined).finally(() => this.#waiting--)]);
    return job;
  }

  /** Starts the worker (builds it on first use) so the first utterance does not wait for the model. */
  async warm(): Promise<void> {
    await this.#ensure();
  }

  /** Ends the worker (one still starting is killed); utterances already queued fail with SPEECH_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelStart?.();
    const w = await this.#worker?.catch(() => undefined);
    this.#worker = undefined;
    if (!w || w.child.exitCode !== null) return;
    const exited = new Promise((r) => w.child.once('exit', r));
    w.child.stdin.end();
    const timer = setTimeout(() => w.child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }

  async #decode(pcm: Pcm, audioS: number): Promise<Transcript> {
    if (this.#closed) throw new SpeechError(SpeechErrorCode.Closed, 'the recogniser is closed');
    let w = await this.#ensure();
    // A worker that died while idle (killed, out of memory) is replaced before it gets an utterance.
    if (w.child.exitCode !== null || w.child.signalCode !== null) {
      this.#worker = undefined;
      w = await this.#ensure();
    }
    const t0 = performance.now();
    const header = Buffer.alloc(4);
    header.writeUInt32LE(pcm.samples.length);
    hold(w.child, true);
    let timer: NodeJS.Timeout | undefined;
    try {
      const line = w.nextLine();
      w.child.stdin.write(header);
      w.child.stdin.write(Buffer.from(pcm.samples.buffer, pcm.samples.byteOffset, pcm.samples.byteLength));
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new SpeechError(SpeechErrorCode.Timeout, `no transcript within ${this.#timeoutMs} ms`)),
          this.#timeoutMs,
        );
      });
      const reply = await Promise.race([line, deadline]);
      if (!reply.startsWith('ok '))
        throw new SpeechError(SpeechErrorCode.WorkerFailed, `pocketsphinx: ${reply}`);
      return { text: reply.slice(3).trim(), ms: performance.now() - t0, audioS, engine: this.engine };
    } catch (e) {
      this.#discard(w);
      throw e instanceof SpeechError
        ? e
        : new SpeechError(
            SpeechErrorCode.WorkerFailed,
            `pocketsphinx worker failed: ${(e as Error).message}`,
            {
              cause: e,
            },
          );
    } finally {
      clearTimeout(timer);
      if (w.child.exitCode === null) hold(w.child, false);
    }
  }

  #discard(w: Worker): void {
    w.child.kill('SIGKILL');
    this.#worker = undefined;
  }

  #ensure(): Promise<Worker> {
    this.#worker ??= this.#start().catch((e) => {
      this.#worker = undefined;
      throw e;
    });
    return this.#worker;
  }

  async #start(): Promise<Worker> {
    const files = [
      join(this.#modelDir, 'en-us'),
      join(this.#modelDir, 'en-us.lm.bin'),
      join(this.#modelDir, 'cmudict-en-us.dict'),
    ];
    const absent = files.find((f) => !existsSync(f));
    if (absent)
      throw new SpeechError(
        SpeechErrorCode.WorkerUnavailable,
        `pocketsphinx model file ${absent} is missing: ${INSTALL_HINT}`,
      );
    const command = await ensureWorker();
    // Closed meanwhile (or before a warm() that came too late): no worker that nothing would end.
    if (this.#closed) throw new SpeechError(SpeechErrorCode.Closed, 'the recogniser is closed');
    const child = spawn(command, files, { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let waiter: { resolve: (l: string) => void; reject: (e: Error) => void } | undefined;
    let ended: Error | undefined;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2_000);
    });
    // A write after the worker died is reported by its exit, not as an unhandled EPIPE.
    child.stdin.on('error', () => undefined);
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (waiter) {
        waiter.resolve(l);
        waiter = undefined;
      } else if (lines.length < 16) lines.push(l);
    });
    const fail = (why: string) => {
      ended ??= new SpeechError(
        SpeechErrorCode.WorkerFailed,
        `pocketsphinx worker ${why}${stderr ? `: ${stderr.trim()}` : ''}`,
      );
      waiter?.reject(ended);
      waiter = undefined;
    };
    child.on('error', (e) => fail(`could not start (${e.message})`));
    child.on('exit', (code, signal) => fail(`exited (${signal ?? `status ${code}`})`));
    const nextLine = () =>
      new Promise<string>((resolve, reject) => {
        const l = lines.shift();
        if (l !== undefined) resolve(l);
        else if (ended) reject(ended);
        else waiter = { resolve, reject };
      });
    // A worker hung while loading (or one close() ends) is killed: the start fails, nothing waits on it.
    let timer: NodeJS.Timeout | undefined;
    const ready = await new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`error it did not say "ready" within ${this.#startTimeoutMs} ms`),
        this.#startTimeoutMs,
      );
      this.#cancelStart = () => resolve('error the recogniser was closed');
      nextLine().then(resolve, (e: Error) => resolve(`error ${e.message}`));
    });
    clearTimeout(timer);
    this.#cancelStart = undefined;
    if (ready !== 'ready' || this.#closed) {
      child.kill('SIGKILL');
      if (this.#closed) throw new SpeechError(SpeechErrorCode.Closed, 'the recogniser is closed');
      throw new SpeechError(SpeechErrorCode.WorkerUnavailable, `pocketsphinx did not start: ${ready}`);
    }
    hold(child, false);
    return { child, nextLine };
  }
}
