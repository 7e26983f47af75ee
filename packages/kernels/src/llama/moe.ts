import { type LlamaOps, swigluFfn } from './ops.js';
import type { LlamaConfig, MoeWeights } from './weights.js';

/** Each row's chosen experts and their mixing weights: the top `perToken` router scores, softmaxed. */
function route(
  scores: Float32Array,
  experts: number,
  perToken: number,
): { expert: number; weight: number }[][] {
  const rows = scores.length / experts;
  const out: { expert: number; weight: number }[][] = [];
  for (let r = 0; r < rows; r++) {
    const row = scores.subarray(r * experts, (r + 1) * experts);
    // Ties go to the lower index, so every rank of a split routes a token the same way.
    const best = Array.from(row.keys())
      .sort((a, b) => row[b]! - row[a]! || a - b)
      .slice(0, perToken)
      .sort((a, b) => a - b);
    const top = Math.max(...best.map((e) => row[e]!));
    const exp = best.map((e) => Math.exp(row[e]! - top));
    const sum = exp.reduce((a, b) => a + b, 0);
    out.push(best.map((expert, i) => ({ expert, weight: exp[i]! / sum })));
  }
  return out;
}

/**
 * The experts `[from, to)` of a mixture-of-experts FFN on the normed rows `xf`: each row's routed
 * experts among them, weighted; rows routed elsewhere get zeros. Over all experts it is the layer's
 * FFN output; over a rank's share, that rank's partial, and the ranks' partials sum to the whole.
 * `moe`'s expert arrays may hold only some experts, starting at expert `stored`.
 */
export async function moeFfn(
  ops: LlamaOps,
  c: LlamaConfig,
  moe: MoeWeights,
  layer: number,
  xf: Float32Array,
  from = 0,
  to = moe.experts,
  stored = 0,
): Promise<Float32Array> {
  const dim = c.dim;
  const routes = route(await ops.linear(xf, moe.router[layer]!, dim, moe.experts), moe.experts, moe.perToken);
  const out = new Float32Array(xf.length);
  for (let e = from; e < to; e++) {
    const rows: { row: number; weight: number }[] = [];
    routes.forEach((r, row) => {
      const hit = r.find((x) => x.expert === e);
      if (hit) rows.push({ row, weight: hit.weight });
    });
    if (rows.length === 0) continue;
    const x = new Float32Array(rows.length * dim);
    rows.forEach(({ row }, i) => {
      x.set(xf.subarray(row * dim, (row + 1) * dim), i * dim);
    });
    const at = e - stored;
    const y = await swigluFfn(
      ops,
      moe.w1[layer]![at]!,
      moe.w3[layer]![at]!,
      moe.w2[layer]![at]!,
      x,
      dim,
      c.hiddenDim,
    );
    rows.forEach(({ row, weight }, i) => {
      for (let j = 0; j < dim; j++) out[row * dim + j]! += weight * y[i * dim + j]!;
    });
  }
  return out;
}
