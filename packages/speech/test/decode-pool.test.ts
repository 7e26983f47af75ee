// decodeAndResample runs decodeWav and resample on a worker thread: the same samples, the same typed
// errors, and an event loop that keeps turning meanwhile.
import assert from 'node:assert/strict';
import test from 'node:test';
import wavefile from 'wavefile';
import {
  decodeAndResample,
  decodeWav,
  encodeWav,
  MAX_WAV_BYTES,
  resample,
  SpeechError,
  SpeechErrorCode,
} from '../src/index.js';

/** A WAV of a 440 Hz tone (a little louder on the left), from wavefile's own writer. */
function toneWav(channels: number, rate: number, bitDepth: string, seconds: number): Uint8Array {
  const frames = Math.round(rate * seconds);
  const float = bitDepth.endsWith('f');
  const full = float ? 1 : 2 ** (Number(bitDepth) - 1) - 1;
  const tracks = Array.from({ length: channels }, (_, c) => {
    const t = float ? new Float64Array(frames) : new Array<number>(frames);
    for (let i = 0; i < frames; i++) {
      const v = (0.5 - 0.2 * c) * Math.sin((2 * Math.PI * 440 * i) / rate);
      // 8-bit WAV is unsigned, centred on 128.
      t[i] = float ? v : Math.round(v * full) + (bitDepth === '8' ? 128 : 0);
    }
    return t;
  });
  const wav = new wavefile.WaveFile();
  wav.fromScratch(channels, rate, bitDepth, channels === 1 ? tracks[0]! : tracks);
  return wav.toBuffer();
}

test('the same samples as decodeWav and resample, and the caller keeps its bytes', async () => {
  const files: [number, number, string][] = [
    [1, 16_000, '16'],
    [2, 16_000, '8'],
    [1, 44_100, '24'],
    [2, 44_100, '32f'],
    [2, 48_000, '32'],
    [1, 48_000, '16'],
  ];
  for (const [channels, rate, bits] of files) {
    const bytes = toneWav(channels, rate, bits, 0.3);
    const kept = bytes.slice();
    const want = resample(decodeWav(bytes), 16_000);
    const got = await decodeAndResample(bytes, 16_000);
    const what = `${channels} channel(s), ${rate} Hz, ${bits}`;
    assert.equal(got.sampleRate, 16_000, what);
    assert.deepEqual(got.samples, want.samples, what);
    assert.deepEqual(bytes, kept, `${what}: the caller's bytes are untouched`);
  }
  // A Node Buffer shares its memory with others: copied for the thread, never moved.
  const buffer = Buffer.from(toneWav(1, 22_050, '16', 0.2));
  const kept = Buffer.from(buffer);
  await decodeAndResample(buffer, 16_000);
  assert.deepEqual(buffer, kept);
});

test('samples are resampled on the thread; samples already at the rate are returned as they are', async () => {
  const pcm = decodeWav(toneWav(1, 22_050, '16', 0.3));
  const kept = pcm.samples.slice();
  assert.deepEqual((await decodeAndResample(pcm, 16_000)).samples, resample(pcm, 16_000).samples);
  assert.deepEqual(pcm.samples, kept, "the caller's samples are untouched");
  assert.equal(await decodeAndResample(pcm, 22_050), pcm);
});

test('a file that is not a usable WAV is refused with the same typed error as decodeWav', async () => {
  const garbage = new TextEncoder().encode('RIFF....not really a wave file at all');
  // 301 s by its header's data size (refused before its samples are converted).
  const tooLong = encodeWav({ samples: new Int16Array(4000 * 301), sampleRate: 4000 });
  const cases: [Uint8Array, RegExp][] = [
    [garbage, /^not a usable WAV file/],
    [tooLong, /longer than 300 s/],
  ];
  for (const [bad, why] of cases) {
    let sync: unknown;
    try {
      decodeWav(bad);
    } catch (e) {
      sync = e;
    }
    assert.ok(sync instanceof SpeechError, 'decodeWav refuses it too');
    await assert.rejects(decodeAndResample(bad, 16_000), (e) => {
      assert.ok(e instanceof SpeechError, `a SpeechError, not ${String(e)}`);
      assert.equal(e.code, SpeechErrorCode.WavInvalid);
      assert.equal(e.message, sync.message);
      assert.match(e.message, why);
      return true;
    });
  }
  // Refused before any copy or hand-off, as a rejection rather than a throw.
  const huge = decodeAndResample(new Uint8Array(MAX_WAV_BYTES + 1), 16_000);
  await assert.rejects(huge, (e) => e instanceof SpeechError && e.code === SpeechErrorCode.WavInvalid);
});

test('the event loop keeps turning while 15 s of 48 kHz stereo are decoded and resampled', async () => {
  const bytes = toneWav(2, 48_000, '16', 15);
  let pending = true;
  let turns = 0;
  const turn = () => {
    if (!pending) return;
    turns++;
    setTimeout(turn, 0);
  };
  setTimeout(turn, 0);
  const pcm = await decodeAndResample(bytes, 16_000);
  pending = false;
  assert.equal(pcm.samples.length, 16_000 * 15);
  // Done on the caller's thread, the work would finish before the first turn.
  assert.ok(turns >= 10, `${turns} turns of the event loop during the decode`);
});
