import { decodeWav, durationS, type SpeechToText, type Transcript } from '@stitch/speech';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { HostAllowList, openHttp, parseHttpUrl, processHostCap, readBounded } from './http.js';

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
  readonly #url: URL;
  readonly #allow: HostAllowList;
  readonly #model: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;

  constructor(o: RemoteTranscriberOptions) {
    const raw = o.endpoint.replace(/\/+$/, '');
    this.#url = parseHttpUrl(raw.endsWith('/audio/transcriptions') ? raw : `${raw}/audio/transcriptions`);
    this.#allow = new HostAllowList([this.#url.host]);
    processHostCap()?.check(this.#url);
    this.#model = o.model ?? 'whisper-1';
    if (this.#model.length === 0 || this.#model.length > 256) fail('model must be 1 to 256 characters');
    this.#apiKey = o.apiKey;
    this.#timeoutMs = o.timeoutMs ?? 60_000;
    this.#maxResponseBytes = o.maxResponseBytes ?? 1024 * 1024;
    this.engine = `openai-compatible ${this.#url.host} ${this.#model}`;
  }

  async transcribe(audio: Uint8Array): Promise<Transcript> {
    // Checked here, so a file that is not audio fails with what is wrong with it, not the server's guess.
    const audioS = durationS(decodeWav(audio));
    const form = new FormData();
    form.append('file', new Blob([audio], { type: 'audio/wav' }), 'audio.wav');
    form.append('model', this.#model);
    form.append('response_format', 'json');
    const t0 = performance.now();
    const open = await openHttp(
      {
        method: 'POST',
        url: this.#url.href,
        headers: this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {},
        body: form,
      },
      this.#allow,
      { timeoutMs: this.#timeoutMs, maxResponseBytes: this.#maxResponseBytes },
    );
    let body: string;
    try {
      body = new TextDecoder().decode(await readBounded(open, this.#maxResponseBytes));
    } finally {
      open.done();
    }
    const status = open.response.status;
    if (status < 200 || status > 299)
      fail(`transcription endpoint ${this.#url.host} answered ${status}: ${body.slice(0, 200)}`);
    let text: unknown;
    try {
      text = (JSON.parse(body) as { text?: unknown }).text;
    } catch (e) {
      fail(`transcription endpoint ${this.#url.host} answered with something that is not JSON`, e);
    }
    if (typeof text !== 'string')
      fail(`transcription endpoint ${this.#url.host} answered without a text field`);
    return { text: text as string, ms: performance.now() - t0, audioS, engine: this.engine };
  }

  async close(): Promise<void> {}
}
