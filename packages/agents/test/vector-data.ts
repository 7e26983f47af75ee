// Vectors for the vector-search tests and `pnpm bench vector`: points of Gaussian clusters around
// random centres, L2-normalised (as text embeddings are), from a seeded generator.

/** sfc32: a small generator with a long period (an LCG here repeats after a few hundred draws in pairs). */
function sfc32(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

export interface Clusters {
  dim: number;
  /** Draws `n` normalised points, row after row; each from a uniformly chosen cluster. */
  draw(n: number): Float32Array;
}

/** `count` cluster centres ~ N(0, I); a point is centre + sigma · N(0, I), then normalised. */
export function gaussianClusters(dim: number, count: number, sigma: number, seed: number): Clusters {
  const rnd = sfc32(seed);
  let spare: number | undefined;
  const gauss = () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - rnd()));
    const t = 2 * Math.PI * rnd();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
  const centres = Float32Array.from({ length: count * dim }, gauss);
  return {
    dim,
    draw(n) {
      const out = new Float32Array(n * dim);
      for (let i = 0; i < n; i++) {
        const c = Math.floor(rnd() * count) * dim;
        let norm = 0;
        for (let j = 0; j < dim; j++) {
          const v = centres[c + j]! + sigma * gauss();
          out[i * dim + j] = v;
          norm += v * v;
        }
        const inv = 1 / Math.sqrt(norm);
        for (let j = 0; j < dim; j++) out[i * dim + j]! *= inv;
      }
      return out;
    },
  };
}

/** Exact top-k by inner product, brute force in TypeScript: the reference the tests check against. */
export function exactTopK(base: Float32Array, queries: Float32Array, dim: number, k: number): number[][] {
  const n = base.length / dim;
  const out: number[][] = [];
  for (let q = 0; q < queries.length / dim; q++) {
    const best: { i: number; s: number }[] = [];
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += base[i * dim + j]! * queries[q * dim + j]!;
      if (best.length < k || s > best[best.length - 1]!.s) {
        best.push({ i, s });
        best.sort((a, b) => b.s - a.s);
        if (best.length > k) best.pop();
      }
    }
    out.push(best.map((b) => b.i));
  }
  return out;
}

/** Share of the true top-k found: |found ∩ exact| / (queries · k). */
export function recallAtK(found: number[][], exact: number[][]): number {
  let hit = 0;
  let total = 0;
  for (let q = 0; q < exact.length; q++) {
    const truth = new Set(exact[q]);
    for (const key of found[q] ?? []) if (truth.has(key)) hit++;
    total += exact[q]!.length;
  }
  return hit / total;
}
