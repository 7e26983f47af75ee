import { decodeAndResample, durationS, type SpeechToText, type Transcript } from '@stitch/speech';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { OpenAiEndpoint } from './openai-endpoint.js';

export interface RemoteTranscriberOptions {
  /** `…/v1` (then `/audio/transcriptions` is appended) or the full URL. */
  endpoint: string;
  /** @default 'whisper-1' */
  model?: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
  /** @default 60 000 */
  timeoutMs?: number;
  /** @default 1 MiB */
  maxResponseBytes?: number;
}

const fail = (message: string, cause?: unknown): never => {
  throw new AgentsError(AgentsErrorCode.SpeechFailed, message, cause === undefined ? undefined : { cause });
};

/**
 * Speech-to-text on any OpenAI-compatible `/v1/audio/transcriptions` endpoint (a Whisper server,
 * OpenAI itself): the WAV goes up as multipart/form-data, the JSON answer's `text` comes back.
 * Only the endpoint's host is reachable, redirects included.
 */
export class RemoteTranscriber implements SpeechToText {
  readonly engine: string;
  readonly #endpoint: OpenAiEndpoint;
  readonly #model: string;

  constructor(o: RemoteTranscriberOptions) {
    this.#model = o.model ?? 'whisper-1';
    if (this.#model.length === 0 || this.#model.length > 256) fail('model must be 1 to 256 characters');
    this.#endpoint = new OpenAiEndpoint(
      o.endpoint,
      '/audio/transcriptions',
      { status: AgentsErrorCode.SpeechFailed, invalid: AgentsErrorCode.SpeechFailed },
      { timeoutMs: o.timeoutMs ?? 60_000, maxResponseBytes: o.maxResponseBytes ?? 1024 * 1024 },
      o.apiKey,
    );
    this.engine = `openai-compatible ${this.#endpoint.url.host} ${this.#model}`;
  }

  async transcribe(audio: Uint8Array): Promise<Transcript> {
    // Checked here, so a file that is not audio fails with what is wrong with it, not the server's guess
    // (on a thread: minutes of audio take seconds to decode). 16 kHz is what Whisper hears anyway.
    const audioS = durationS(await decodeAndResample(audio, 16_000));
    const form = new FormData();
    form.append('file', new Blob([audio], { type: 'audio/wav' }), 'audio.wav');
    form.append('model', this.#model);
    form.append('response_format', 'json');
    const t0 = performance.now();
    const text = ((await this.#endpoint.post(form)) as { text?: unknown } | null)?.text;
    if (typeof text !== 'string')
      fail(`transcription endpoint ${this.#endpoint.url.host} answered without a text field`);
    return { text: text as string, ms: performance.now() - t0, audioS, engine: this.engine };
  }

  async close(): Promise<void> {}
}
