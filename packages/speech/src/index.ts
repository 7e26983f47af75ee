export { ensureWorker, WORKER_ENV } from './build-worker.js';
/** decodeWav and resample on a worker thread, so the event loop keeps turning through minutes of audio. */
export { decodeAndResample } from './decode-pool.js';
export { SpeechError, SpeechErrorCode } from './errors.js';
export type { EspeakOptions } from './espeak.js';
export { EspeakSynthesizer, MAX_SPEAK_CHARS } from './espeak.js';
export type { PocketsphinxOptions } from './pocketsphinx.js';
export { DEBIAN_MODEL_DIR, PocketsphinxRecognizer, RECOGNISER_RATE } from './pocketsphinx.js';
export type { SpeechToText, Transcript } from './speech-to-text.js';
export type { Pcm } from './wav.js';
export { decodeWav, durationS, encodeWav, MAX_AUDIO_SECONDS, MAX_WAV_BYTES, resample } from './wav.js';
export type { WordErrors } from './wer.js';
export { normaliseWords, wordErrorRate, wordErrors } from './wer.js';
