// Plain TypeScript versions of every kernel, accumulating in f64: the oracle for tests and the
// reference transformer. Layouts match @stitch/compiler's kernelArgs (row-major).

export function matmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transposeB = false,
) {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * (transposeB ? b[j * k + p]! : b[p * n + j]!);
      c[i * n + j] = s;
    }
  }
  return c;
}

export function batchMatmul(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
) {
  const c = new Float32Array(batch * m * n);
  for (let i = 0; i < batch; i++) {
    c.set(
      matmul(a.subarray(i * m * k, (i + 1) * m * k), b.subarray(i * k * n, (i + 1) * k * n), m, k, n),
      i * m * n,
    );
  }
  return c;
}

export function matvec(a: Float32Array, x: Float32Array, m: number, k: number) {
  return matmul(a, x, m, k, 1);
}

/** y = A·x for q8_0 A: `q` int8 [m, k], `scales` one per 32 along k ([m, k/32]). */
export function matvecQ8(q: Int8Array, scales: Float32Array, x: Float32Array, m: number, k: number) {
  const y = new Float32Array(m);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += scales[i * (k / 32) + Math.floor(p / 32)]! * q[i * k + p]! * x[p]!;
    y[i] = s;
  }
  return y;
}

export function add(a: Float32Array, b: Float32Array) {
  return a.map((v, i) => v + b[i]!);
}

export function swiglu(g: Float32Array, u: Float32Array) {
  return g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]!);
}

export function rmsnorm(x: Float32Array, w: Float32Array, dim: number, eps: number) {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[r * dim + j]! ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let j = 0; j < dim; j++) out[r * dim + j] = x[r * dim + j]! * inv * w[j]!;
  }
  return out;
}

export function softmax(x: Float32Array, cols: number) {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / cols; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const mx = Math.max(...row);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp(row[j]! - mx);
    for (let j = 0; j < cols; j++) out[r * cols + j] = Math.exp(row[j]! - mx) / sum;
  }
  return out;
}

/** Interleaved pairs, as llama2.c: pair p rotates by pos · theta^(−2p/headDim). */
export function rope(x: Float32Array, pos: Int32Array, heads: number, headDim: number, theta: number) {
  const out = new Float32Array(x.length);
  for (let s = 0; s < pos.length; s++) {
    for (let h = 0; h < heads; h++) {
      for (let p = 0; p < headDim / 2; p++) {
        const angle = pos[s]! * theta ** ((-2 * p) / headDim);
        const i = (s * heads + h) * headDim + 2 * p;
        const [x0, x1] = [x[i]!, x[i + 1]!];
        out[i] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
        out[i + 1] = x0 * Math.sin(angle) + x1 * Math.cos(angle);
      }
    }
  }
  return out;
}

/** Attention of `queries` rows (query row i sees keys 0..limit(i)) with grouped-query KV heads. */
function attend(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  rows: number,
  keys: number,
  heads: number,
  kvHeads: number,
  hd: number,
  limit: (row: number) => number,
) {
  const out = new Float32Array(rows * heads * hd);
  const g = heads / kvHeads;
  for (let i = 0; i < rows; i++) {
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / g);
      const n = Math.min(keys, limit(i) + 1);
      const scores = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[(i * heads + h) * hd + d]! * k[(j * kvHeads + kh) * hd + d]!;
        scores[j] = s / Math.sqrt(hd);
      }
      const mx = Math.max(...scores);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += scores[j] = Math.exp(scores[j]! - mx);
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += (scores[j]! / sum) * v[(j * kvHeads + kh) * hd + d]!;
        out[(i * heads + h) * hd + d] = acc;
      }
    }
  }
  return out;
}

export function attentionPrefill(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  seq: number,
  heads: number,
  kvHeads: number,
  hd: number,
) {
  return attend(q, k, v, seq, seq, heads, kvHeads, hd, (i) => i);
}

export function attentionDecode(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  len: number,
  heads: number,
  kvHeads: number,
  hd: number,
) {
  return attend(q, k, v, 1, len, heads, kvHeads, hd, () => len);
}

export function embedding(table: Float32Array, ids: Int32Array, dim: number) {
  const out = new Float32Array(ids.length * dim);
  ids.forEach((id, i) => {
    out.set(table.subarray(id * dim, (id + 1) * dim), i * dim);
  });
  return out;
}

export function topkScores(vectors: Float32Array, query: Float32Array, metric: 'dot' | 'cosine') {
  const dim = query.length;
  const n = vectors.length / dim;
  const qn = query.reduce((s, x) => s + x * x, 0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let dot = 0;
    let vn = 0;
    for (let d = 0; d < dim; d++) {
      dot += vectors[i * dim + d]! * query[d]!;
      vn += vectors[i * dim + d]! ** 2;
    }
    out[i] = metric === 'dot' ? dot : dot / Math.sqrt(vn * qn + 1e-12);
  }
  return out;
}

/** Indices and scores of the k best scores, best first (ties: lower index first). */
export function topK(scores: Float32Array, k: number): { index: number; score: number }[] {
  return [...scores]
    .map((score, index) => ({ index, score }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, k);
}

/** max |a − b| / max |b|: the error measure used for "agrees within 1e-4". */
export function relativeError(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den === 0 ? num : num / den;
}
