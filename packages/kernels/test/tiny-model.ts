// A small vocabulary and model the checkpoint tests write in both formats.
import {
  type LlamaConfig,
  type LlamaOps,
  type LlamaWeights,
  reference,
  referenceOps,
  syntheticWeights,
  Tokenizer,
} from '../src/index.js';

const MERGES: [string, number][] = [
  [' h', -5],
  ['he', -3],
  ['ll', -2],
  ['llo', -1.5],
  ['hello', -1],
  [' he', -6],
  [' hello', -0.5],
  [' w', -4],
  ['or', -3.5],
  ['ld', -3.2],
  ['orld', -2.5],
];

/** `<unk>`, `<s>`, `</s>`, 256 byte tokens, printable ASCII, then a few merges with scores. */
export function tinyTokenizer(): Tokenizer {
  const pieces: string[] = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let c = 32; c < 127; c++) pieces.push(String.fromCharCode(c));
  pieces.push('é');
  const scores = pieces.map((_, i) => (i < 259 ? 0 : -10 - i / 1000));
  for (const [piece, score] of MERGES) {
    pieces.push(piece);
    scores.push(score);
  }
  return new Tokenizer(
    pieces.map((p) => Buffer.from(p, 'utf8')),
    Float32Array.from(scores),
  );
}

/** Rows are multiples of 32 so every matrix can be written as q8_0. */
export const tinyConfig = (vocab: number): LlamaConfig => ({
  dim: 64,
  hiddenDim: 96,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab,
  seqLen: 32,
});

/** Synthetic weights; `unshared` gives the classifier its own matrix (negative vocab in llama2.c). */
export function tinyWeights(vocab: number, seed: number, unshared = false) {
  const w = syntheticWeights(tinyConfig(vocab), seed);
  return unshared ? { ...w, wcls: syntheticWeights(tinyConfig(vocab), seed + 1).tokenEmbedding } : w;
}

/**
 * max |out − ref| ≤ 1e-4 × max Σ|terms| over the classifier's dot products (the kernel tests' bound:
 * rounding scales with the magnitude of the terms, not with a result that may cancel to near 0).
 */
export function logitsBound(wcls: Float32Array, hidden: Float32Array, vocab: number): number {
  const abs = (v: Float32Array) => v.map(Math.abs);
  const sums = reference.matvec(abs(wcls), abs(hidden), vocab, hidden.length);
  return 1e-4 * sums.reduce((m, x) => Math.max(m, x), 0);
}

/** Reference ops that also keep the last input of the classifier (the final hidden state, for the bound). */
export function recordingReference(w: LlamaWeights): { ops: LlamaOps; hidden: () => Float32Array } {
  const ops = referenceOps(w.config);
  let hidden: Float32Array = new Float32Array(0);
  return {
    ops: {
      ...ops,
      linear: (x, m, i, o) => {
        if (m === w.wcls) hidden = x.subarray(x.length - i);
        return ops.linear(x, m, i, o);
      },
    },
    hidden: () => hidden,
  };
}
