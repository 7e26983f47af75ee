import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileKernel, defaultCacheDir, type KernelSpec, runnableTargets } from '@stitch/compiler';
import { KernelRuntime, probeHost, reference as ref } from '../src/index.js';

// Shared with every other test and the demo: a kernel compiled once is not compiled again.
const cacheDir = defaultCacheDir();
const runtime = new KernelRuntime({ threads: 2 });

// Seeded so a failure reproduces; the seed is in the test name.
const seed = Number(process.env.STITCH_TEST_SEED ?? Date.now() % 100000);
let state = seed;
const rand = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state / 2 ** 32;
};
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const floats = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);

interface Case {
  spec: KernelSpec;
  inputs: (Float32Array | Int32Array)[];
  outLen: number;
  expected: Float32Array;
  /**
   * For sums of products: the same sums over |terms|. Rounding error scales with it, not with the
   * result, which cancellation can make arbitrarily small (a 4-term dot product near 0 once failed
   * max|a−b|/max|b| ≤ 1e-4 although every term was exact to f32 precision).
   */
  magnitude?: Float32Array;
}

const abs = (v: Float32Array) => v.map(Math.abs);
const maxAbs = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const maxAbsDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

function cases(): Case[] {
  const [m, k, n] = [int(1, 20), int(1, 20), int(1, 20)];
  const rows = int(1, 6);
  const cols = int(1, 24);
  const [heads, g, hd] = [int(1, 2) * 2, 2, int(1, 4) * 2];
  const kvHeads = heads / g;
  const seq = int(1, 7);
  const out: Case[] = [];
  const push = (spec: KernelSpec, inputs: (Float32Array | Int32Array)[], expected: Float32Array) =>
    out.push({ spec, inputs, outLen: expected.length, expected });
  // Contractions: expected = f(inputs), magnitude = f(|inputs|).
  const contract = (
    spec: KernelSpec,
    inputs: Float32Array[],
    f: (a: Float32Array, b: Float32Array) => Float32Array,
  ) =>
    out.push({
      spec,
      inputs,
      outLen: f(inputs[0]!, inputs[1]!).length,
      expected: f(inputs[0]!, inputs[1]!),
      magnitude: f(abs(inputs[0]!), abs(inputs[1]!)),
    });
  {
    const [a, b] = [floats(m * k), floats(k * n)];
    contract({ op: 'nn.matmul', m, k, n }, [a, b], (p, q) => ref.matmul(p, q, m, k, n));
    const bt = floats(n * k);
    contract({ op: 'nn.matmul', m: null, k, n, transposeB: true }, [a, bt], (p, q) =>
      ref.matmul(p, q, m, k, n, true),
    );
    // A shape that divides every target's register tile exercises the tiled, vectorised schedule.
    const [a2, b2] = [floats(16 * 40), floats(40 * 64)];
    contract({ op: 'nn.matmul', m: 16, k: 40, n: 64 }, [a2, b2], (p, q) => ref.matmul(p, q, 16, 40, 64));
    // 24 rows also fit AVX2's 6×16 tile.
    const a4 = floats(24 * 40);
    contract({ op: 'nn.matmul', m: 24, k: 40, n: 64 }, [a4, b2], (p, q) => ref.matmul(p, q, 24, 40, 64));
    const [ba, bb] = [floats(2 * m * k), floats(2 * k * n)];
    contract({ op: 'nn.batch_matmul', b: 2, m, k, n }, [ba, bb], (p, q) => ref.batchMatmul(p, q, 2, m, k, n));
    const x = floats(k);
    contract({ op: 'nn.matvec', m, k }, [a, x], (p, q) => ref.matvec(p, q, m, k));
    const [a3, x3] = [floats(16 * 256), floats(256)];
    contract({ op: 'nn.matvec', m: 16, k: 256 }, [a3, x3], (p, q) => ref.matvec(p, q, 16, 256));
    // Five row tiles with the partial sums fused into each: every tile's sums start from zero.
    const [a5, x5] = [floats(40 * 24), floats(24)];
    contract({ op: 'nn.matvec', m: 40, k: 24 }, [a5, x5], (p, q) => ref.matvec(p, q, 40, 24));
  }
  {
    const [a, b] = [floats(rows * cols), floats(rows * cols)];
    push({ op: 'nn.add', rows: null, cols }, [a, b], ref.add(a, b));
    push({ op: 'nn.swiglu', rows, cols }, [a, b], ref.swiglu(a, b));
    const w = floats(cols);
    push({ op: 'nn.rmsnorm', rows: null, dim: cols, eps: 1e-5 }, [a, w], ref.rmsnorm(a, w, cols, 1e-5));
    push({ op: 'nn.softmax', rows: null, cols }, [a], ref.softmax(a, cols));
  }
  {
    const x = floats(seq * heads * hd);
    const pos = Int32Array.from({ length: seq }, () => int(0, 200));
    push(
      { op: 'nn.rope', seq: null, heads, headDim: hd, theta: 10000 },
      [x, pos],
      ref.rope(x, pos, heads, hd, 10000),
    );
    const [q, kk, v] = [floats(seq * heads * hd), floats(seq * kvHeads * hd), floats(seq * kvHeads * hd)];
    push(
      { op: 'nn.attention_prefill', seq: null, heads, kvHeads, headDim: hd },
      [q, kk, v],
      ref.attentionPrefill(q, kk, v, seq, heads, kvHeads, hd),
    );
    const q1 = floats(heads * hd);
    push(
      { op: 'nn.attention_decode', len: null, heads, kvHeads, headDim: hd },
      [q1, kk, v],
      ref.attentionDecode(q1, kk, v, seq, heads, kvHeads, hd),
    );
  }
  {
    const [vocab, dim] = [int(2, 30), int(1, 16)];
    const table = floats(vocab * dim);
    const ids = Int32Array.from({ length: int(1, 9) }, () => int(0, vocab - 1));
    push({ op: 'nn.embedding', vocab, dim, count: null }, [table, ids], ref.embedding(table, ids, dim));
    const vecs = floats(n * dim);
    const q = floats(dim);
    for (const metric of ['dot', 'cosine'] as const) {
      push({ op: 'nn.topk', n, dim, metric }, [vecs, q], ref.topkScores(vecs, q, metric));
    }
  }
  return out;
}

const targets = runnableTargets(probeHost().x86Level);

describe(`every kernel matches the TypeScript reference (seed ${seed})`, () => {
  for (const target of targets) {
    test(`target ${target}`, async () => {
      const all = cases();
      const artifacts = await Promise.all(all.map((c) => compileKernel(c.spec, { target, cacheDir })));
      await Promise.all(
        all.map(async (c, i) => {
          const kernel = runtime.load(artifacts[i]!);
          const out = new Float32Array(c.outLen).fill(Number.NaN);
          await kernel.run([...c.inputs, out]);
          const err = c.magnitude
            ? maxAbsDiff(out, c.expected) / maxAbs(c.magnitude)
            : ref.relativeError(out, c.expected);
          assert.ok(
            err <= 1e-4,
            `${c.spec.op} ${JSON.stringify(c.spec)} on ${target}: relative error ${err}`,
          );
        }),
      );
    });
  }
});
