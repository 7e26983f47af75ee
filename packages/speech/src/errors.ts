/** Every code a `SpeechError` can carry; the values are stable. */
export const SpeechErrorCode = {
  /** The bytes are not a WAV file this package reads (PCM 8/16/24/32-bit or float), or it is too long. */
  WavInvalid: 'SPEECH_WAV_INVALID',
  /** The recogniser's worker could not be built or started (pocketsphinx or its model is missing). */
  WorkerUnavailable: 'SPEECH_WORKER_UNAVAILABLE',
  /** The worker failed on this utterance or died while decoding it (it is restarted for the next). */
  WorkerFailed: 'SPEECH_WORKER_FAILED',
  /** More utterances are waiting than the recogniser queues. */
  Busy: 'SPEECH_BUSY',
  /** The recogniser or synthesiser was closed. */
  Closed: 'SPEECH_CLOSED',
  /** An utterance or a synthesis took longer than its deadline. */
  Timeout: 'SPEECH_TIMEOUT',
  /** Text to speak is empty, too long, or espeak-ng failed on it. */
  SynthesisFailed: 'SPEECH_SYNTHESIS_FAILED',
} as const;
export type SpeechErrorCode = (typeof SpeechErrorCode)[keyof typeof SpeechErrorCode];

/** The one error class of @stitch/speech; the message says what to do. */
export class SpeechError extends Error {
  readonly code: SpeechErrorCode;

  constructor(code: SpeechErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
