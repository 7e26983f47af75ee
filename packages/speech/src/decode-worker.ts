// A decode pool thread: wavefile parses and resamples synchronously, seconds for minutes of audio, so
// that work runs here and the caller's event loop keeps turning. Loaded by piscina (decode-pool.ts).
import { move } from 'piscina';
import { SpeechError, type SpeechErrorCode } from './errors.js';
import { decodeWav, type Pcm, resample } from './wav.js';

export interface DecodeTask {
  audio: Uint8Array | Pcm;
  sampleRate: number;
}

/**
 * The samples at the task's rate, or the SpeechError that refused the audio as plain data: structured
 * clone keeps neither its class nor its code, and callers branch on both.
 */
export type DecodeResult = Int16Array | { code: SpeechErrorCode; message: string };

export default function decode({ audio, sampleRate }: DecodeTask): DecodeResult {
  try {
    const pcm = audio instanceof Uint8Array ? decodeWav(audio) : audio;
    // Moved, not copied, back (piscina unwraps the move): nothing on this thread uses them again.
    return move(resample(pcm, sampleRate).samples) as Int16Array;
  } catch (e) {
    if (e instanceof SpeechError) return { code: e.code, message: e.message };
    throw e;
  }
}
