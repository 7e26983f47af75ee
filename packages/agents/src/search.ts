import { obtainKernel, type Target } from '@stitch/compiler';
import { type Kernel, KernelRuntime, probeHost, reference } from '@stitch/kernels';

/** The in-repo document set `web_search` ranks: short facts about the systems this demo touches. */
export const DOCUMENTS: readonly { title: string; text: string }[] = [
  {
    title: 'NATS JetStream',
    text: 'JetStream adds persistence, streams, consumers and key value buckets to NATS messaging.',
  },
  {
    title: 'Key-value buckets',
    text: 'A JetStream KV bucket stores the latest value per key with history, TTL and watch.',
  },
  {
    title: 'H100',
    text: 'The NVIDIA H100 GPU has HBM3 memory with about 3.35 TB/s bandwidth and fp16 tensor cores.',
  },
  {
    title: 'Gaudi 3',
    text: 'Intel Gaudi 3 is an AI accelerator with 128 GB HBM2e memory and integrated ethernet.',
  },
  {
    title: 'Prefill and decode',
    text: 'LLM inference has a compute bound prefill phase and a memory bandwidth bound decode phase.',
  },
  {
    title: 'KV cache',
    text: 'The key value cache keeps attention keys and values of past tokens so decode reads them once per token.',
  },
  {
    title: 'MLIR',
    text: 'MLIR is a compiler infrastructure with dialects; linalg ops lower to loops and LLVM IR.',
  },
  { title: 'Actors', text: 'An actor owns its state and processes one message at a time from its mailbox.' },
  {
    title: 'Solar panels',
    text: 'Solar panel efficiency is the share of sunlight turned into electricity, typically 20 percent.',
  },
  {
    title: 'Heat pumps',
    text: 'A heat pump moves heat with a coefficient of performance of three to four in mild weather.',
  },
  {
    title: 'TCO',
    text: 'Total cost of ownership adds the financed hardware price and the operating cost per hour.',
  },
  {
    title: 'Llama',
    text: 'Llama is a decoder only transformer with RMSNorm, rotary embeddings, grouped query attention and SwiGLU.',
  },
];

const DIM = 256;

/** Hashed bag-of-words embedding (FNV-1a per lower-cased word), L2-normalised. */
export function embedText(text: string): Float32Array {
  const v = new Float32Array(DIM);
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    let h = 0x811c9dc5;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
    v[(h >>> 0) % DIM]! += 1;
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < DIM; i++) v[i]! /= norm;
  return v;
}

const INDEX = (() => {
  const all = new Float32Array(DOCUMENTS.length * DIM);
  DOCUMENTS.forEach((d, i) => {
    all.set(embedText(`${d.title} ${d.text}`), i * DIM);
  });
  return all;
})();

export interface SearchHit {
  title: string;
  score: number;
  text: string;
}

let scorer: Promise<Kernel> | undefined;

/** The compiled `nn.topk` (cosine) kernel over the document matrix, built for this host once. */
function scoreKernel(): Promise<Kernel> {
  scorer ??= (async () => {
    const target = (probeHost().x86Level ?? 'x86-64') as Target;
    const spec = { op: 'nn.topk' as const, n: DOCUMENTS.length, dim: DIM, metric: 'cosine' as const };
    return new KernelRuntime({ threads: 1 }).load(await obtainKernel(spec, { target }));
  })();
  scorer.catch(() => {
    scorer = undefined;
  });
  return scorer;
}

/** Cosine scores from the compiled kernel, then the top k in TypeScript (as the kernel contract says). */
export async function webSearch(query: string, k = 3): Promise<SearchHit[]> {
  const scores = new Float32Array(DOCUMENTS.length);
  await (await scoreKernel()).run([INDEX, embedText(query), scores]);
  return reference.topK(scores, k).map(({ index, score }) => ({
    ...DOCUMENTS[index]!,
    score: Math.round(score * 1000) / 1000,
  }));
}
