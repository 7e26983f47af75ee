import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpeechError, SpeechErrorCode } from './errors.js';
import { decodeWav, type Pcm } from './wav.js';

/** Longest text spoken in one call (about three minutes of speech). */
export const MAX_SPEAK_CHARS = 2_000;

export interface EspeakOptions {
  /** An espeak-ng voice (`espeak-ng --voices`). @default 'en-us' */
  voice?: string;
  /** Words per minute, 80–450. @default 160 */
  wordsPerMinute?: number;
  /** Syntheses running at once; more wait. @default 2 */
  concurrency?: number;
  /** Syntheses waiting, at most. @default 32 */
  maxQueue?: number;
  /** @default 30 000 */
  timeoutMs?: number;
}

const fail = (code: SpeechErrorCode, why: string, cause?: unknown) => new SpeechError(code, why, { cause });

/**
 * Text-to-speech with espeak-ng. One process per utterance: espeak-ng starts in milliseconds and
 * holds no model worth keeping warm, unlike the recogniser. The text goes in on stdin, never as
 * arguments, so no text is read as an option.
 */
export class EspeakSynthesizer {
  readonly engine = 'espeak-ng';
  readonly #voice: string;
  readonly #wpm: number;
  readonly #concurrency: number;
  readonly #maxQueue: number;
  readonly #timeoutMs: number;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(options: EspeakOptions = {}) {
    this.#voice = options.voice ?? 'en-us';
    if (!/^[A-Za-z0-9_+-]{1,64}$/.test(this.#voice))
      throw fail(SpeechErrorCode.SynthesisFailed, `voice "${this.#voice}" is not an espeak-ng voice name`);
    this.#wpm = options.wordsPerMinute ?? 160;
    if (!Number.isInteger(this.#wpm) || this.#wpm < 80 || this.#wpm > 450)
      throw fail(SpeechErrorCode.SynthesisFailed, `wordsPerMinute must be an integer from 80 to 450`);
    this.#concurrency = options.concurrency ?? 2;
    this.#maxQueue = options.maxQueue ?? 32;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The text spoken, as mono 16-bit samples at espeak-ng's rate (22 050 Hz). */
  async synthesize(text: string): Promise<Pcm> {
    if (typeof text !== 'string' || text.trim().length === 0)
      throw fail(SpeechErrorCode.SynthesisFailed, 'nothing to say: the text is empty');
    if (text.length > MAX_SPEAK_CHARS)
      throw fail(
        SpeechErrorCode.SynthesisFailed,
        `text of ${text.length} characters; at most ${MAX_SPEAK_CHARS}`,
      );
    if (this.#running >= this.#concurrency) {
      if (this.#queue.length >= this.#maxQueue)
        throw fail(SpeechErrorCode.Busy, `${this.#queue.length} syntheses are already waiting; retry later`);
      await new Promise<void>((r) => this.#queue.push(r));
    }
    this.#running++;
    try {
      return await this.#speak(text);
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  async #speak(text: string): Promise<Pcm> {
    // To a file, not stdout: streamed to a pipe, espeak-ng cannot go back to fill in the WAV sizes.
    const dir = await mkdtemp(join(tmpdir(), 'stitch-tts-'));
    const out = join(dir, 'speech.wav');
    try {
      await new Promise<void>((resolve, reject) => {
        const child = execFile(
          'espeak-ng',
          ['-v', this.#voice, '-s', String(this.#wpm), '-w', out],
          { timeout: this.#timeoutMs, killSignal: 'SIGKILL' },
          (err, _stdout, stderr) => {
            if (!err) return resolve();
            const why =
              (err as { code?: string }).code === 'ENOENT'
                ? 'espeak-ng is not installed: install the Debian package espeak-ng'
                : err.killed
                  ? `no speech within ${this.#timeoutMs} ms`
                  : `espeak-ng failed: ${stderr.trim() || err.message}`;
            reject(fail(err.killed ? SpeechErrorCode.Timeout : SpeechErrorCode.SynthesisFailed, why, err));
          },
        );
        child.stdin?.on('error', () => undefined);
        child.stdin?.end(text);
      });
      return decodeWav(await readFile(out));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
