import { KernelOptionsInvalid } from '../errors.js';
import { argmax } from './model.js';

/** Picks the next token from logits. */
export type Sampler = (logits: Float32Array) => number;

/**
 * Greedy (argmax) at temperature 0; otherwise a draw from softmax(logits / temperature) with a
 * seeded generator (mulberry32), so a seed replays the same text.
 */
export function sampler(temperature = 0, seed = 1): Sampler {
  if (!(Number.isFinite(temperature) && temperature >= 0)) {
    throw new KernelOptionsInvalid(`temperature must be a finite number ≥ 0, got ${temperature}`);
  }
  if (temperature === 0) return argmax;
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return (logits) => {
    const max = logits[argmax(logits)]!;
    const p = Float64Array.from(logits, (x) => Math.exp((x - max) / temperature));
    const total = p.reduce((a, b) => a + b, 0);
    let r = random() * total;
    for (let i = 0; i < p.length; i++) {
      r -= p[i]!;
      if (r <= 0) return i;
    }
    return p.length - 1;
  };
}
