import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import { decodeWav, durationS, EspeakSynthesizer, encodeWav, resample } from '@stitch/speech';
import { AgentsError, RemoteTranscriber } from '../src/index.js';
import { type OpConfig, runOp } from '../src/ops.js';
import { speechToTextFor, spokenReply } from '../src/speech-ops.js';
import { type Loopback, listen } from './loopback.js';

const cfg = (op: string, attrs: OpConfig['attrs'] = {}): OpConfig => ({
  deployment: 'd',
  opId: op,
  op,
  attrs,
  device: 'cpu',
  modelled: false,
  estimatedMs: 1,
  natsUrl: 'nats://127.0.0.1:4222',
  cluster: 'c',
});

let speech: Uint8Array;
let server: Loopback;
const uploads: { model: string; file: Uint8Array; type: string; auth?: string }[] = [];

async function form(req: IncomingMessage): Promise<FormData> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers = { 'content-type': req.headers['content-type'] ?? '' };
  return new Request('http://x/', { method: 'POST', headers, body: Buffer.concat(chunks) }).formData();
}

before(async () => {
  speech = encodeWav(
    resample(await new EspeakSynthesizer().synthesize('find a good restaurant near the station'), 16_000),
  );
  // An OpenAI-compatible transcription endpoint: it answers with the upload's size, so the test sees what arrived.
  server = await listen(async (req, res) => {
    if (req.url !== '/v1/audio/transcriptions' || req.method !== 'POST') return res.writeHead(404).end();
    const f = await form(req);
    const file = f.get('file') as File;
    const model = String(f.get('model'));
    uploads.push({
      model,
      file: new Uint8Array(await file.arrayBuffer()),
      type: file.type,
      auth: req.headers.authorization,
    });
    if (model === 'down') return res.writeHead(503).end('{"error":{"message":"overloaded"}}');
    if (model === 'garbage') return res.writeHead(200).end('<html>');
    if (model === 'no-text') return res.writeHead(200).end('{"words":[]}');
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ text: `${file.size} bytes heard` }));
  });
});
after(() => server?.close());

test('text.stt transcribes the request audio on pocketsphinx; the transcript is the query and the audio goes no further', async () => {
  const out = await runOp(cfg('text.stt', { engine: 'whisper-small' }), { audio: speech, caller: 'x' }, 'r1');
  assert.equal(out.sttEngine, 'pocketsphinx');
  assert.equal(typeof out.transcript, 'string');
  assert.match(out.transcript as string, /restaurant/);
  assert.equal(out.query, out.transcript);
  assert.equal(out.audio, undefined, 'the audio is consumed');
  assert.equal(out.caller, 'x', 'other fields flow on');
});

test('text.stt without audio, or with bytes that are not audio, is a typed error', async () => {
  await assert.rejects(
    runOp(cfg('text.stt'), { query: 'typed' }, 'r2'),
    (e) => e instanceof AgentsError && e.code === 'SPEECH_FAILED' && /"audio"/.test(e.message),
  );
  await assert.rejects(
    runOp(cfg('text.stt'), { audio: new Uint8Array([1, 2, 3]) }, 'r3'),
    (e) => (e as { code?: string }).code === 'SPEECH_WAV_INVALID',
  );
});

test('an endpoint attr sends the audio to an OpenAI-compatible transcription server instead', async () => {
  const op = cfg('text.stt', { endpoint: server.url('/v1'), remote_model: 'whisper-large-v3' });
  const out = await runOp(op, { audio: speech }, 'r4');
  assert.equal(out.transcript, `${speech.byteLength} bytes heard`);
  assert.match(out.sttEngine as string, /^openai-compatible 127\.0\.0\.1:\d+ whisper-large-v3$/);
  const up = uploads.at(-1)!;
  assert.equal(up.model, 'whisper-large-v3');
  assert.equal(up.type, 'audio/wav');
  assert.deepEqual(up.file, speech);
  assert.ok(speechToTextFor(op) instanceof RemoteTranscriber);
});

test('a transcription server that fails or answers nonsense is a typed error naming it', async () => {
  for (const [model, why] of [
    ['down', /answered 503/],
    ['garbage', /not JSON/],
    ['no-text', /without a text field/],
  ] as const) {
    const t = new RemoteTranscriber({ endpoint: server.url('/v1'), model });
    await assert.rejects(
      t.transcribe(speech),
      (e) => e instanceof AgentsError && e.code === 'SPEECH_FAILED' && why.test(e.message),
      model,
    );
  }
  // Not audio: refused before anything is sent.
  const before = uploads.length;
  await assert.rejects(new RemoteTranscriber({ endpoint: server.url('/v1') }).transcribe(new Uint8Array(10)));
  assert.equal(uploads.length, before);
});

test("text.tts speaks the findings as a 16 kHz WAV; a synthetic model's noise is not read aloud", async () => {
  const ctx = {
    transcript: 'what is the kv cache',
    hits: [{ title: 'KV cache' }],
    llmText: '\u0003\u00fe\u0011x\u0093',
  };
  assert.equal(spokenReply(ctx), 'You asked: what is the kv cache. The best match I found is KV cache.');
  assert.equal(
    spokenReply({ ...ctx, llmText: 'It stores keys and values.' }).endsWith('It stores keys and values.'),
    true,
  );
  assert.equal(spokenReply({ reply: 'Hello.' }), 'Hello.');
  const out = await runOp(cfg('text.tts', { voice: 'en-us', words_per_minute: 170 }), ctx, 'r5');
  assert.equal(out.spokenText, spokenReply(ctx));
  assert.equal(out.ttsEngine, 'espeak-ng');
  const pcm = decodeWav(out.speech as Uint8Array);
  assert.equal(pcm.sampleRate, 16_000);
  assert.ok(durationS(pcm) > 2, `${durationS(pcm)} s`);
  await assert.rejects(
    runOp(cfg('text.tts', { voice: '; rm -rf' }), ctx, 'r6'),
    (e) => (e as { code?: string }).code === 'SPEECH_SYNTHESIS_FAILED',
  );
});
