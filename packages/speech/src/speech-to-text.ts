/** What a recogniser heard. */
export interface Transcript {
  text: string;
  /** Wall time the engine took. */
  ms: number;
  /** Length of the audio. */
  audioS: number;
  engine: string;
}

/** A speech-to-text engine: pocketsphinx here, or any OpenAI-compatible transcription endpoint. */
export interface SpeechToText {
  readonly engine: string;
  /** `audio`: WAV bytes. */
  transcribe(audio: Uint8Array): Promise<Transcript>;
  close(): Promise<void>;
}
