import {
  EspeakSynthesizer,
  encodeWav,
  MAX_SPEAK_CHARS,
  PocketsphinxRecognizer,
  resample,
  type SpeechToText,
} from '@stitch/speech';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { LLM_API_KEY_ENV } from './llm-call.js';
import { perConfig } from './memo.js';
import { RemoteTranscriber } from './remote-stt.js';

/** A node's default transcription endpoint (`…/v1` of an OpenAI-compatible server) for `text.stt` ops without an `endpoint` attr. */
export const STT_ENDPOINT_ENV = 'STITCH_STT_ENDPOINT';
/** Rate of the speech `text.tts` writes: enough for a voice, half the bytes of espeak-ng's 22 050 Hz. */
export const SPEECH_OUT_RATE = 16_000;

type Attrs = Record<string, string | number | boolean>;
type Context = Record<string, unknown>;

// One local recogniser per process: its model loads once and every stt op on the node shares it.
let local: PocketsphinxRecognizer | undefined;
const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
const endpointOf = (cfg: { attrs: Attrs }) =>
  typeof cfg.attrs.endpoint === 'string' ? cfg.attrs.endpoint : process.env[STT_ENDPOINT_ENV];

const remoteFor = perConfig((cfg: { attrs: Attrs }) => {
  const apiKey = process.env[LLM_API_KEY_ENV];
  return new RemoteTranscriber({
    endpoint: endpointOf(cfg)!,
    ...(typeof cfg.attrs.remote_model === 'string' ? { model: cfg.attrs.remote_model } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(num(cfg.attrs.timeout_ms) !== undefined ? { timeoutMs: num(cfg.attrs.timeout_ms) } : {}),
  });
});

/**
 * The engine of a `text.stt` op: an OpenAI-compatible endpoint when its `endpoint` attr or the
 * node's STITCH_STT_ENDPOINT names one, else pocketsphinx on this node (the graph's `engine` attr
 * names the model the plan was costed for).
 */
export function speechToTextFor(cfg: { attrs: Attrs }): SpeechToText {
  if (endpointOf(cfg)) return remoteFor(cfg);
  local ??= new PocketsphinxRecognizer();
  return local;
}

/** The `text.tts` op's synthesiser (attrs `voice`, `words_per_minute`), built once per config. */
export const synthesizerFor = perConfig(
  (cfg: { attrs: Attrs }) =>
    new EspeakSynthesizer({
      ...(typeof cfg.attrs.voice === 'string' ? { voice: cfg.attrs.voice } : {}),
      ...(num(cfg.attrs.words_per_minute) !== undefined
        ? { wordsPerMinute: num(cfg.attrs.words_per_minute) }
        : {}),
    }),
);

/** Starts what the op needs before its first request (the recogniser's worker and model). */
export async function prepareSpeech(cfg: { op: string; attrs: Attrs }): Promise<void> {
  if (cfg.op === 'text.tts') synthesizerFor(cfg);
  else {
    const stt = speechToTextFor(cfg);
    if (stt instanceof PocketsphinxRecognizer) await stt.warm();
  }
}

/** `text.stt`: the request's `audio` (WAV bytes) as text; the transcript becomes the query. */
export async function transcribeOp(cfg: { attrs: Attrs }, ctx: Context): Promise<Context> {
  const audio = ctx.audio;
  if (!(audio instanceof Uint8Array))
    throw new AgentsError(
      AgentsErrorCode.SpeechFailed,
      'text.stt needs the request\'s speech as WAV bytes in its "audio" field',
    );
  const t = await speechToTextFor(cfg).transcribe(audio);
  return { transcript: t.text, query: t.text, sttEngine: t.engine, $timings: { sttMs: t.ms } };
}

/** Printable words only: a synthetic model's bytes are noise, not something to read aloud. */
function speakable(text: string): string | undefined {
  const clean = text
    .replace(/[^A-Za-z0-9 .,;:'?!-]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length >= 3 && clean.length >= 0.8 * text.trim().length ? clean : undefined;
}

/** What the agent says: the `reply` field when an op wrote one, else its findings in a sentence or two. */
export function spokenReply(ctx: Context): string {
  if (typeof ctx.reply === 'string' && ctx.reply.trim()) return ctx.reply;
  const parts: string[] = [];
  const top = Array.isArray(ctx.hits) ? (ctx.hits[0] as { title?: unknown } | undefined)?.title : undefined;
  if (typeof ctx.transcript === 'string' && ctx.transcript) parts.push(`You asked: ${ctx.transcript}.`);
  if (typeof top === 'string') parts.push(`The best match I found is ${top}.`);
  const said = typeof ctx.llmText === 'string' ? speakable(ctx.llmText) : undefined;
  if (said) parts.push(said);
  const reply = parts.length > 0 ? parts.join(' ') : 'I have no answer to that.';
  return reply.length <= MAX_SPEAK_CHARS ? reply : reply.slice(0, reply.lastIndexOf(' ', MAX_SPEAK_CHARS));
}

/** `text.tts`: the reply spoken, as a mono 16-bit WAV at SPEECH_OUT_RATE. */
export async function speakOp(cfg: { attrs: Attrs }, ctx: Context): Promise<Context> {
  const text = spokenReply(ctx);
  const t0 = performance.now();
  const pcm = await synthesizerFor(cfg).synthesize(text);
  return {
    speech: encodeWav(resample(pcm, SPEECH_OUT_RATE)),
    spokenText: text,
    ttsEngine: synthesizerFor(cfg).engine,
    $timings: { ttsMs: performance.now() - t0 },
  };
}
