import {
  argmax,
  KernelRuntime,
  kernelOps,
  Llama,
  type LlamaConfig,
  probeHost,
  syntheticWeights,
} from '@stitch/kernels';

/**
 * The real LLM work of the demo: a Llama-architecture decoder on **synthetic weights** (deterministic,
 * untrained), byte-level vocabulary, run on compiled kernels. Kernel calls execute on libuv pool
 * threads through the native addon, never on the event loop.
 */
export const TINY_LLAMA: LlamaConfig = {
  dim: 128,
  hiddenDim: 344,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  vocab: 256,
  seqLen: 256,
};

/** Longest prompt fed to the model (bytes), and tokens generated per request. */
export const MAX_PROMPT = 160;
export const DECODE_TOKENS = 16;

const models = new Map<string, Promise<Llama>>();
let runtime: KernelRuntime | undefined;

/** One model per role (prefill, decode) in this process, so KV caches of different actors never mix. */
export function tinyModel(role: string): Promise<Llama> {
  let m = models.get(role);
  if (!m) {
    m = (async () => {
      runtime ??= new KernelRuntime({ threads: 1 });
      const target = probeHost().x86Level ?? 'x86-64';
      const ops = await kernelOps(TINY_LLAMA, runtime, { target: target as 'x86-64' });
      return new Llama(syntheticWeights(TINY_LLAMA, 7), ops);
    })();
    models.set(role, m);
    m.catch(() => models.delete(role));
  }
  return m;
}

export function tokenize(text: string): number[] {
  return [...new TextEncoder().encode(text)].slice(0, MAX_PROMPT);
}

/** Bytes the synthetic model emits are mapped onto printable ASCII so the output can be shown. */
export function detokenize(ids: number[]): string {
  return ids.map((id) => String.fromCharCode(32 + (id % 95))).join('');
}

/** First generated token: argmax of the logits after the prompt. */
export async function prefill(ids: number[]): Promise<number> {
  const model = await tinyModel('prefill');
  return argmax(await model.prefill(ids.length > 0 ? ids : [0]));
}

/**
 * Greedy decode of `steps` tokens. The KV cache is rebuilt here from the prompt (kv.transfer forwards
 * the prompt ids, not the cache), because prefill and decode may run in different processes.
 */
export async function decode(ids: number[], first: number, steps: number): Promise<number[]> {
  const model = await tinyModel('decode');
  await model.prefill(ids.length > 0 ? ids : [0]);
  const out = [first];
  let logits = await model.decode(first);
  while (out.length < steps) {
    const next = argmax(logits);
    out.push(next);
    if (out.length < steps) logits = await model.decode(next);
  }
  return out;
}
