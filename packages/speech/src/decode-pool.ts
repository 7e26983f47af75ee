import { Piscina } from 'piscina';
import type { DecodeResult, DecodeTask } from './decode-worker.js';
import { SpeechError } from './errors.js';
import { checkWavBytes, type Pcm } from './wav.js';

// The worker file beside this one: .js when built, .ts when the tests run the sources under the
// repository's TypeScript loader (piscina imports the worker itself, so the loader's .js → .ts mapping
// does not apply).
const WORKER_EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** Made on first use: most processes that import this package never decode audio. */
let pool: Piscina<DecodeTask, DecodeResult> | undefined;

/**
 * decodeWav (for bytes) and resample to `sampleRate` on a worker thread: minutes of audio take wavefile
 * seconds that the caller's event loop would otherwise spend blocked. Samples already at the rate come
 * back as they are.
 */
export async function decodeAndResample(audio: Uint8Array | Pcm, sampleRate: number): Promise<Pcm> {
  const isBytes = audio instanceof Uint8Array;
  if (isBytes) checkWavBytes(audio);
  else if (audio.sampleRate === sampleRate) return audio;
  // A copy is moved to the thread: moving the caller's own buffer would empty it under them.
  const copy = isBytes
    ? new Uint8Array(audio)
    : { samples: new Int16Array(audio.samples), sampleRate: audio.sampleRate };
  pool ??= new Piscina({
    filename: new URL(`./decode-worker${WORKER_EXT}`, import.meta.url).href,
    minThreads: 0,
    maxThreads: 1,
    // An idle process gives the thread back (an idle one never holds the process open); the next
    // decode starts another in well under a second.
    idleTimeout: 10_000,
  });
  const r = await pool.run(
    { audio: copy, sampleRate },
    { transferList: [copy instanceof Uint8Array ? copy.buffer : copy.samples.buffer] },
  );
  if (r instanceof Int16Array) return { samples: r, sampleRate };
  throw new SpeechError(r.code, r.message);
}
