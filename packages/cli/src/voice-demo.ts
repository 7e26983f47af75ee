import { readFileSync, writeFileSync } from 'node:fs';
import { type Deployment, GraphRunner, type RequestResult } from '@stitch/agents';
import {
  decodeWav,
  durationS,
  EspeakSynthesizer,
  encodeWav,
  MAX_WAV_BYTES,
  RECOGNISER_RATE,
  resample,
} from '@stitch/speech';
import { printPlan, table } from './demo-plan.js';
import { readInputFile } from './input-file.js';
import { type LocalCluster, sampleName, samplePath, startLocalCluster } from './local-cluster.js';
import { unlessAborted } from './signals.js';

/** What the demo says into the voice agent when no `--audio` is given. */
export const VOICE_PROMPT = 'what is the weather like in paris today';
/** A caller id from the phone line, as a voice request carries it: the privacy filter must redact it. */
export const VOICE_CALLER = '+44 20 7946 0958';

export interface VoiceDemoRun {
  /** A WAV file to send; undefined: espeak-ng speaks VOICE_PROMPT. */
  audio: string | undefined;
  /** Where the spoken answer goes (WAV), with its text beside it (`.txt`). */
  reply: string;
  /** Aborted by SIGINT/SIGTERM: the demo stops what it started and fails with the reason. */
  signal: AbortSignal;
}

const say = (line = '') => process.stdout.write(`${line}\n`);

interface VoiceAnswer {
  transcript?: string;
  redactions?: Record<string, { kind: string }[]>;
  spokenText?: string;
  speech?: Uint8Array;
  sttEngine?: string;
  ttsEngine?: string;
  found?: string | null;
}

/** The voice agent end to end: speech in, through every operator across the demo's nodes, speech out. */
export async function runVoiceDemo({ audio, reply, signal }: VoiceDemoRun): Promise<void> {
  const t0 = performance.now();
  let local: LocalCluster | undefined;
  try {
    const speech = audio
      ? readInputFile(audio, MAX_WAV_BYTES, 'audio')
      : await unlessAborted(spokenPrompt(), signal);
    const pcm = decodeWav(speech);
    say(
      audio
        ? `input: ${audio} (${durationS(pcm).toFixed(1)} s at ${pcm.sampleRate} Hz)`
        : `input: espeak-ng says "${VOICE_PROMPT}" (${durationS(pcm).toFixed(1)} s at ${pcm.sampleRate} Hz); caller id ${VOICE_CALLER}`,
    );
    local = await startLocalCluster('demo', say, { signal });
    await unlessAborted(voiceRequest(local, speech, reply), signal);
  } finally {
    await local?.close();
    say(`demo took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

/** The voice graph deployed on the started cluster, and one request through it. */
async function voiceRequest(local: LocalCluster, speech: Uint8Array, reply: string): Promise<void> {
  say(`deploying packages/ir/samples/${sampleName('voice')} through actor stitch-coordinator/main`);
  const d = (await local.coordinatorRef.ask(
    { type: 'deploy', mlir: readFileSync(samplePath('voice'), 'utf8') },
    { timeoutMs: 60_000 },
  )) as Deployment;
  printPlan(d);
  const runner = new GraphRunner(local.cluster, { timeoutMs: 60_000 });
  const r = await runner.run(d, 'voice-1', { audio: speech, caller: VOICE_CALLER });
  const a = (r.answer ?? {}) as VoiceAnswer;
  say(`transcript (${a.sttEngine}): "${a.transcript ?? ''}"`);
  const redacted = Object.entries(a.redactions ?? {}).map(
    ([field, found]) => `${field}: ${found.map((f) => f.kind).join(', ')}`,
  );
  say(`redactions: ${redacted.length > 0 ? redacted.join('; ') : 'none'}`);
  say(`web_search top hit: ${a.found ?? '-'}`);
  if (!(a.speech instanceof Uint8Array)) throw new Error('the voice agent answered without speech');
  const out = decodeWav(a.speech);
  writeFileSync(reply, a.speech);
  writeFileSync(`${reply}.txt`, `${a.spokenText ?? ''}\n`);
  say(`reply (${a.ttsEngine}): "${a.spokenText ?? ''}"`);
  say(`reply audio: ${reply} (${durationS(out).toFixed(1)} s at ${out.sampleRate} Hz), text: ${reply}.txt`);
  say();
  printTimes(d, r);
}

async function spokenPrompt(): Promise<Uint8Array> {
  return encodeWav(resample(await new EspeakSynthesizer().synthesize(VOICE_PROMPT), RECOGNISER_RATE));
}

/** Each op's time and device for the request (modelled devices labelled), then the totals. */
function printTimes(d: Deployment, r: RequestResult): void {
  const rows = d.ops.map((o) => {
    const t = r.ops[o.id]!;
    return [
      o.id,
      o.op,
      t.device,
      t.modelled ? 'modelled' : 'measured',
      t.node,
      t.ms.toFixed(1),
      t.askMs.toFixed(1),
    ];
  });
  table(['op', 'kind', 'device', 'timing', 'node', 'op ms', 'ask ms'], rows);
  say();
  say(
    `voice request: ${r.latencyMs.toFixed(0)} ms end to end (SLA ${d.slaMs} ms), $${r.usd.toExponential(3)} ` +
      `(cpu measured + modelled devices at catalog TCO $/h), ${r.retries} retried asks`,
  );
}
