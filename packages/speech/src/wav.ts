import wavefile from 'wavefile';
import { SpeechError, SpeechErrorCode } from './errors.js';

/** Mono 16-bit samples and their rate: what the engines take and make. */
export interface Pcm {
  samples: Int16Array;
  sampleRate: number;
}

/** Longest audio accepted anywhere in this package: a spoken request, not a recording archive. */
export const MAX_AUDIO_SECONDS = 300;
/** Largest WAV file read (300 s of 48 kHz stereo 32-bit is about 110 MiB; nobody sends that to an agent). */
export const MAX_WAV_BYTES = 64 * 1024 * 1024;

const invalid = (why: string, cause?: unknown): never => {
  throw new SpeechError(SpeechErrorCode.WavInvalid, `not a usable WAV file: ${why}`, { cause });
};

/** What decodeWav refuses without parsing: not bytes, or too many of them. */
export function checkWavBytes(bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) invalid('expected bytes');
  if (bytes.byteLength > MAX_WAV_BYTES) invalid(`larger than ${MAX_WAV_BYTES} bytes`);
}

/**
 * Reads any PCM or float WAV (wavefile parses the chunk layouts, extensible headers and bit depths
 * users' recorders write) and mixes it down to mono 16-bit.
 */
export function decodeWav(bytes: Uint8Array): Pcm {
  checkWavBytes(bytes);
  let wav: wavefile.WaveFile;
  try {
    wav = new wavefile.WaveFile(bytes);
  } catch (e) {
    return invalid((e as Error).message, e);
  }
  const fmt = wav.fmt as { numChannels: number; sampleRate: number; bitsPerSample: number };
  const { numChannels: channels, sampleRate, bitsPerSample: bits } = fmt;
  if (!Number.isInteger(sampleRate) || sampleRate < 4000 || sampleRate > 192_000)
    invalid(`sample rate ${sampleRate} Hz is outside 4 000–192 000`);
  if (!Number.isInteger(channels) || channels < 1 || channels > 8) invalid(`${channels} channels`);
  if (!Number.isInteger(bits) || bits < 1 || bits > 64) invalid(`${bits} bits per sample`);
  // Its length from the data's bytes, before converting them: conversion builds float copies of every
  // sample (16 MiB of A-law took 10 s and 356 MB to be found too long afterwards).
  const dataBytes = (wav.data as { samples: Uint8Array }).samples.length;
  if ((dataBytes * 8) / (bits * channels) / sampleRate > MAX_AUDIO_SECONDS)
    invalid(`longer than ${MAX_AUDIO_SECONDS} s`);
  try {
    wav.toBitDepth('16');
  } catch (e) {
    return invalid((e as Error).message, e);
  }
  const interleaved = wav.getSamples(true, Int16Array) as unknown as Int16Array;
  const frames = Math.floor(interleaved.length / channels);
  if (frames / sampleRate > MAX_AUDIO_SECONDS) invalid(`longer than ${MAX_AUDIO_SECONDS} s`);
  if (channels === 1) return { samples: interleaved.slice(0, frames), sampleRate };
  const samples = new Int16Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += interleaved[f * channels + c]!;
    samples[f] = Math.round(sum / channels);
  }
  return { samples, sampleRate };
}

/** A mono 16-bit PCM WAV file. */
export function encodeWav(pcm: Pcm): Uint8Array {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, pcm.sampleRate, '16', pcm.samples);
  return wav.toBuffer();
}

/** The same sound at another rate (wavefile's band-limited resampler, not sample dropping). */
export function resample(pcm: Pcm, sampleRate: number): Pcm {
  if (pcm.sampleRate === sampleRate) return pcm;
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, pcm.sampleRate, '16', pcm.samples);
  wav.toSampleRate(sampleRate);
  return { samples: wav.getSamples(false, Int16Array) as unknown as Int16Array, sampleRate };
}

/** Seconds of sound. */
export const durationS = (pcm: Pcm): number => pcm.samples.length / pcm.sampleRate;
