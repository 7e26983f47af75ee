import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import {
  EspeakSynthesizer,
  encodeWav,
  MAX_SPEAK_CHARS,
  PocketsphinxRecognizer,
  SpeechError,
  wordErrorRate,
} from '../src/index.js';

// Generated set: espeak-ng says each sentence, pocketsphinx transcribes it. Both engines are
// deterministic, so the rate is the same on every run with the same Debian packages.
const SENTENCES = [
  'what is the weather like in paris today',
  'please call my office tomorrow morning',
  'how efficient are solar panels',
  'send the report to my manager',
  'the meeting starts at nine o clock',
  'find a good restaurant near the station',
];

const tts = new EspeakSynthesizer();
const stt = new PocketsphinxRecognizer();
after(() => stt.close());

const workerPids = () =>
  execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('stt-worker-'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));

/** Each sentence's speech and its transcript asked alone (the next test asks them again at once). */
const alone: { wav: Uint8Array; text: string }[] = [];

test('espeak-ng speech transcribed by pocketsphinx: word error rate on the generated set', async () => {
  const pairs = [];
  for (const reference of SENTENCES) {
    const pcm = await tts.synthesize(reference);
    assert.equal(pcm.sampleRate, 22_050);
    assert.ok(pcm.samples.length > 22_050, 'at least a second of speech');
    const wav = encodeWav(pcm);
    const t = await stt.transcribe(wav);
    assert.equal(t.engine, 'pocketsphinx');
    pairs.push({ reference, hypothesis: t.text });
    alone.push({ wav, text: t.text });
  }
  const wer = wordErrorRate(pairs);
  console.log(`pocketsphinx on espeak-ng speech: WER ${wer.toFixed(3)} over ${SENTENCES.length} sentences`);
  for (const p of pairs) console.log(`  "${p.reference}" -> "${p.hypothesis}"`);
  // Poor (about half the words) but well below this: a broken pipeline (wrong rate, silence, noise) is near 1.
  assert.ok(wer <= 0.7, `WER ${wer} above 0.7`);
});

test('utterances asked at once are answered in order, each with its own transcript', async () => {
  const three = alone.slice(0, 3);
  assert.equal(three.length, 3, 'the transcripts of the test before');
  const together = await Promise.all(three.map((u) => stt.transcribe(u.wav)));
  assert.deepEqual(
    together.map((t) => t.text),
    three.map((u) => u.text),
  );
});

test('silence transcribes to nothing, and garbage is refused without disturbing the worker', async () => {
  const silence = await stt.transcribe(encodeWav({ samples: new Int16Array(16_000), sampleRate: 16_000 }));
  assert.equal(silence.text, '');
  await assert.rejects(
    stt.transcribe(new TextEncoder().encode('not audio')),
    (e) => e instanceof SpeechError && e.code === 'SPEECH_WAV_INVALID',
  );
  const [pid] = workerPids();
  const t = await stt.transcribe(encodeWav(await tts.synthesize(SENTENCES[4]!)));
  assert.match(t.text, /meeting/);
  assert.deepEqual(workerPids(), [pid], 'the same worker served');
});

/** Half a second of silence: the cheapest utterance, to have a worker running. */
const hush = () => stt.transcribe(encodeWav({ samples: new Int16Array(8_000), sampleRate: 16_000 }));

test('a worker that dies mid-utterance fails that utterance only; the next starts a new worker', async () => {
  const wav = alone[4]?.wav;
  assert.ok(wav, 'the speech of the first test');
  await hush();
  const [pid] = workerPids();
  assert.ok(pid, 'a worker runs');
  // Samples at the recogniser's rate reach the worker without a turn of the event loop; a WAV would be
  // decoded on a thread first, and the worker, seen dead by then, replaced before it got the utterance.
  const pending = stt.transcribe({ samples: new Int16Array(16_000 * 20), sampleRate: 16_000 });
  process.kill(pid, 'SIGKILL');
  await assert.rejects(pending, (e) => e instanceof SpeechError && e.code === 'SPEECH_WORKER_FAILED');
  assert.match((await stt.transcribe(wav)).text, /meeting/);
  const now = workerPids();
  assert.equal(now.length, 1);
  assert.notEqual(now[0], pid);
});

test('a worker that died while idle is replaced before the next utterance, which succeeds', async () => {
  const wav = alone[4]?.wav;
  assert.ok(wav, 'the speech of the first test');
  await hush();
  const [pid] = workerPids();
  process.kill(pid!, 'SIGKILL');
  while (workerPids().includes(pid!)) await new Promise((r) => setTimeout(r, 20));
  // Its exit is seen by the next turn of the event loop at the latest.
  await new Promise((r) => setImmediate(r));
  assert.match((await stt.transcribe(wav)).text, /meeting/);
});

test('the queue is bounded: past it, a typed busy error', async () => {
  const small = new PocketsphinxRecognizer({ maxQueue: 2 });
  try {
    const wav = encodeWav({ samples: new Int16Array(16_000), sampleRate: 16_000 });
    const accepted = [small.transcribe(wav), small.transcribe(wav)];
    await assert.rejects(small.transcribe(wav), (e) => e instanceof SpeechError && e.code === 'SPEECH_BUSY');
    await Promise.all(accepted);
  } finally {
    await small.close();
  }
  await assert.rejects(
    small.transcribe(new Uint8Array(44)),
    (e) => e instanceof SpeechError && e.code === 'SPEECH_CLOSED',
  );
});

test('a missing model is a typed error that says what to install', async () => {
  const r = new PocketsphinxRecognizer({ modelDir: '/nonexistent' });
  await assert.rejects(
    r.transcribe(encodeWav({ samples: new Int16Array(1600), sampleRate: 16_000 })),
    (e) =>
      e instanceof SpeechError &&
      e.code === 'SPEECH_WORKER_UNAVAILABLE' &&
      /pocketsphinx-en-us/.test(e.message),
  );
});

test('text to speak is checked: empty, too long, a voice that is not a name', async () => {
  await assert.rejects(tts.synthesize('  '), (e) => e instanceof SpeechError && /empty/.test(e.message));
  await assert.rejects(tts.synthesize('a'.repeat(MAX_SPEAK_CHARS + 1)), (e) => e instanceof SpeechError);
  assert.throws(
    () => new EspeakSynthesizer({ voice: '--stdin; rm' }),
    (e) => e instanceof SpeechError,
  );
  // Text that looks like options is spoken, not obeyed (it goes in on stdin).
  const pcm = await tts.synthesize('--help -w /tmp/owned.wav');
  assert.ok(pcm.samples.length > 0);
});
