// pnpm bench vector [--quick]: the vector-search operator's index (usearch HNSW) against exact
// search on compiled kernels, on N vectors of 384 dimensions from 1 000 Gaussian clusters with
// held-out queries. Both sides get the whole query batch and the same threads. One JSON line per
// index setting, then one for the same vectors partitioned by key (--partitions=P, default 3; as a
// graph's `partitions = P` splits a search): each partition's index built and searched alone, the
// partitions' top 10 merged.

import { type Neighbour, VectorIndex, vectorPartition } from '@stitch/agents';
import { compileKernel, type Target } from '@stitch/compiler';
import { type Kernel, KernelRuntime, probeHost } from '@stitch/kernels';
import { gaussianClusters, recallAtK } from '../packages/agents/test/vector-data.js';

const arg = (name: string, dflt: number): number => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.slice(name.length + 3)) : dflt;
};
const quick = process.argv.includes('--quick');
const N = arg('vectors', quick ? 3_000 : 1_000_000);
const DIM = arg('dim', 384);
const CLUSTERS = arg('clusters', 1000);
const SIGMA = arg('sigma', 1);
const Q = arg('queries', 1000);
const K = 10;
const THREADS = arg('threads', 2);
const CHUNK = 10_000;
// --quick searches at one breadth: it checks that the bench runs, the full run measures the curve.
const EFS = quick ? [64] : [64, 128, 256];
const PARTITIONS = arg('partitions', 3);

const emit = (o: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ bench: 'vector', ...o })}\n`);
const rssMb = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const seconds = (t0: number) => (performance.now() - t0) / 1000;

/**
 * Exact top-k by inner product: the compiled `nn.matmul` kernel (queries × chunkᵀ, MLIR → LLVM for
 * this host) scores every chunk of the base for the whole query batch, THREADS chunks at a time;
 * the top k per query is kept in TypeScript. `nn.topk` scores one query at a time, so the batched
 * matmul is the compiled kernel for a batch.
 */
async function exactSearch(kernel: Kernel, base: Float32Array, queries: Float32Array): Promise<number[][]> {
  const nq = queries.length / DIM;
  const best = Array.from({ length: nq }, () => ({ keys: [] as number[], scores: [] as number[] }));
  const chunks = Math.ceil(N / CHUNK);
  const scores = Array.from({ length: THREADS }, () => new Float32Array(nq * CHUNK));
  const padded = new Float32Array(CHUNK * DIM);
  const select = (c: number, s: Float32Array) => {
    const rows = Math.min(CHUNK, N - c * CHUNK);
    for (let q = 0; q < nq; q++) {
      const b = best[q]!;
      let floor = b.scores.length < K ? Number.NEGATIVE_INFINITY : b.scores[K - 1]!;
      for (let i = 0; i < rows; i++) {
        const v = s[q * CHUNK + i]!;
        if (v <= floor) continue;
        let at = b.scores.length;
        while (at > 0 && b.scores[at - 1]! < v) at--;
        b.scores.splice(at, 0, v);
        b.keys.splice(at, 0, c * CHUNK + i);
        if (b.scores.length > K) {
          b.scores.pop();
          b.keys.pop();
        }
        if (b.scores.length === K) floor = b.scores[K - 1]!;
      }
    }
  };
  for (let c = 0; c < chunks; c += THREADS) {
    const batch = Array.from({ length: Math.min(THREADS, chunks - c) }, (_, j) => c + j);
    await Promise.all(
      batch.map((chunk, j) => {
        const from = chunk * CHUNK * DIM;
        let rows = base.subarray(from, from + CHUNK * DIM);
        if (rows.length < CHUNK * DIM) {
          padded.fill(0).set(rows);
          rows = padded;
        }
        return kernel.run([queries, rows, scores[j]!]);
      }),
    );
    for (const [j, chunk] of batch.entries()) select(chunk, scores[j]!);
  }
  return best.map((b) => b.keys);
}

const data = gaussianClusters(DIM, CLUSTERS, SIGMA, 1);
let t0 = performance.now();
const base = data.draw(N);
const queries = data.draw(Q);
const genS = seconds(t0);
const rssData = rssMb();

const target = (probeHost().x86Level ?? 'x86-64') as Target;
const kernel = new KernelRuntime({ threads: THREADS }).load(
  await compileKernel({ op: 'nn.matmul', m: null, k: DIM, n: CHUNK, transposeB: true }, { target }),
);
await exactSearch(kernel, base, queries.subarray(0, DIM)); // warm-up: page in the kernel and the base
t0 = performance.now();
const exact = await exactSearch(kernel, base, queries);
const exactS = seconds(t0);
const exactQps = Q / exactS;

t0 = performance.now();
const built = new VectorIndex({ dim: DIM, metric: 'ip', maxVectors: N, threads: THREADS });
const keys = Array.from({ length: 4096 }, (_, i) => i);
for (let i = 0; i < N; i += 4096) {
  const n = Math.min(4096, N - i);
  await built.add(
    keys.slice(0, n).map((k) => k + i),
    base.subarray(i * DIM, (i + n) * DIM),
  );
}
const buildS = seconds(t0);
const rssBuilt = rssMb();
const bytes = await built.toBytes();
await built.close();

for (const ef of EFS) {
  // The search breadth is fixed per usearch index object, so each setting loads the same graph.
  const index = new VectorIndex({
    dim: DIM,
    metric: 'ip',
    maxVectors: N,
    threads: THREADS,
    expansionSearch: ef,
  });
  await index.fromBytes(bytes);
  await index.search(queries.subarray(0, DIM), K);
  t0 = performance.now();
  const found = (await index.search(queries, K)).map((r) => r.map((h) => h.key));
  const qps = Q / seconds(t0);
  await index.close();
  emit({
    index: `usearch-hnsw-M16-efc128-ef${ef}`,
    vectors: N,
    dim: DIM,
    clusters: CLUSTERS,
    sigma: SIGMA,
    queries: Q,
    threads: THREADS,
    build_s: +buildS.toFixed(2),
    rss_mb: rssBuilt,
    index_mb: Math.round(bytes.length / 2 ** 20),
    data_rss_mb: rssData,
    qps: Math.round(qps),
    exact_qps: +exactQps.toFixed(1),
    exact: `compiled nn.matmul (${target}) + TS top-k`,
    recall_at_10: +recallAtK(found, exact).toFixed(4),
    speedup_vs_exact: +(qps / exactQps).toFixed(1),
    gen_s: +genS.toFixed(1),
  });
}

/**
 * The same vectors in PARTITIONS indexes, key k in partition vectorPartition(k, PARTITIONS), each
 * built and searched on its own (ef 64); the answer per query is the 10 nearest of the partitions'
 * lists. `build_s_max` / `search_s_max`: the slowest partition (partitions on separate nodes work at
 * once); `_sum`: all of them one after another (the CPU a search costs the fleet).
 */
const rows = Array.from({ length: PARTITIONS }, () => [] as number[]);
for (let k = 0; k < N; k++) rows[vectorPartition(k, PARTITIONS)]!.push(k);
const builds: number[] = [];
const searches: number[] = [];
const lists: Neighbour[][][] = [];
for (const keysOf of rows) {
  t0 = performance.now();
  const part = new VectorIndex({ dim: DIM, metric: 'ip', maxVectors: keysOf.length, threads: THREADS });
  for (let i = 0; i < keysOf.length; i += 4096) {
    const batch = keysOf.slice(i, i + 4096);
    const vectors = new Float32Array(batch.length * DIM);
    batch.forEach((k, j) => {
      vectors.set(base.subarray(k * DIM, (k + 1) * DIM), j * DIM);
    });
    await part.add(batch, vectors);
  }
  builds.push(seconds(t0));
  await part.search(queries.subarray(0, DIM), K);
  t0 = performance.now();
  lists.push(await part.search(queries, K));
  searches.push(seconds(t0));
  await part.close();
}
const merged = Array.from({ length: Q }, (_, q) =>
  lists
    .flatMap((l) => l[q]!)
    .sort((a, b) => a.distance - b.distance || a.key - b.key)
    .slice(0, K)
    .map((h) => h.key),
);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
emit({
  index: `usearch-hnsw-M16-efc128-ef64-partitions${PARTITIONS}`,
  vectors: N,
  partitions: PARTITIONS,
  partition_vectors: rows.map((r) => r.length),
  queries: Q,
  threads: THREADS,
  build_s_max: +Math.max(...builds).toFixed(2),
  build_s_sum: +sum(builds).toFixed(2),
  qps_parallel: Math.round(Q / Math.max(...searches)),
  qps_sum: Math.round(Q / sum(searches)),
  exact_qps: +exactQps.toFixed(1),
  recall_at_10: +recallAtK(merged, exact).toFixed(4),
});
