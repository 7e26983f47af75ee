import assert from 'node:assert/strict';
import test from 'node:test';
import wavefile from 'wavefile';
import { decodeWav, durationS, encodeWav, resample, SpeechError } from '../src/index.js';

const tone = (rate: number, seconds: number) => {
  const samples = new Int16Array(Math.round(rate * seconds));
  for (let i = 0; i < samples.length; i++)
    samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate));
  return { samples, sampleRate: rate };
};

test('a mono 16-bit WAV round-trips sample for sample', () => {
  const pcm = tone(16_000, 0.25);
  const back = decodeWav(encodeWav(pcm));
  assert.equal(back.sampleRate, 16_000);
  assert.deepEqual(back.samples, pcm.samples);
});

test('stereo float WAV is mixed down to mono 16-bit', () => {
  const wav = new wavefile.WaveFile();
  const left = new Float32Array(1000).fill(0.5);
  const right = new Float32Array(1000).fill(-0.25);
  wav.fromScratch(2, 44_100, '32f', [left, right]);
  const pcm = decodeWav(wav.toBuffer());
  assert.equal(pcm.sampleRate, 44_100);
  assert.equal(pcm.samples.length, 1000);
  // (0.5 − 0.25) ÷ 2 of full scale.
  assert.ok(Math.abs(pcm.samples[500]! - 0.125 * 32767) < 2, `got ${pcm.samples[500]}`);
});

test('resampling keeps the duration', () => {
  const pcm = tone(22_050, 1);
  const r = resample(pcm, 16_000);
  assert.equal(r.sampleRate, 16_000);
  assert.ok(Math.abs(durationS(r) - 1) < 0.01, `duration ${durationS(r)}`);
});

test('bytes that are not a WAV are a typed error naming the problem', () => {
  for (const bad of [new Uint8Array(0), new TextEncoder().encode('RIFF....not really a wave file at all')]) {
    assert.throws(
      () => decodeWav(bad),
      (e) =>
        e instanceof SpeechError && e.code === 'SPEECH_WAV_INVALID' && /not a usable WAV/.test(e.message),
    );
  }
});

test('audio longer than the limit is refused', () => {
  const wav = encodeWav({ samples: new Int16Array(4000 * 301), sampleRate: 4000 });
  assert.throws(
    () => decodeWav(wav),
    (e) => e instanceof SpeechError && /longer than 300 s/.test(e.message),
  );
});

test('a file too long is refused from its data size, before its samples are converted', () => {
  // 301 s of 8 kHz A-law: 2.4 MB, whose conversion to 16-bit builds float copies of every sample.
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, 8000, '8a', new Uint8Array(8000 * 301));
  const bytes = wav.toBuffer();
  const proto = wavefile.WaveFile.prototype as unknown as { toBitDepth: (...a: unknown[]) => void };
  const convert = proto.toBitDepth;
  let conversions = 0;
  proto.toBitDepth = function (this: unknown, ...a: unknown[]) {
    conversions++;
    return convert.apply(this, a);
  };
  try {
    assert.throws(
      () => decodeWav(bytes),
      (e) => e instanceof SpeechError && /longer than 300 s/.test(e.message),
    );
    assert.equal(conversions, 0);
    // 299 s of the same decodes.
    const ok = new wavefile.WaveFile();
    ok.fromScratch(1, 8000, '8a', new Uint8Array(8000 * 299));
    assert.equal(decodeWav(ok.toBuffer()).samples.length, 8000 * 299);
    assert.equal(conversions, 1);
  } finally {
    proto.toBitDepth = convert;
  }
});
