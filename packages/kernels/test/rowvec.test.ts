import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileKernel, defaultCacheDir, generateKernel, runnableTargets } from '@stitch/compiler';
import { KernelRuntime, probeHost, reference } from '../src/index.js';

// Shared with every other test and the demo: a kernel compiled once is not compiled again.
const cacheDir = defaultCacheDir();
const runtime = new KernelRuntime();
const seed = Number(process.env.STITCH_TEST_SEED ?? Date.now() % 100000);
let state = seed;
const uniform = (n: number, lo: number, hi: number) =>
  Float32Array.from({ length: n }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return lo + (state / 2 ** 32) * (hi - lo);
  });
const maxDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

// Column counts around the 8- and 16-lane vectors and their unrolled steps, rows dynamic.
const COLS = [1, 15, 16, 17, 63, 64, 65, 100, 1031];
const ROWS = 3;

test('the AVX-512 softmax reduces by vreduceps and scales by vscalefps, the others by an exponent-field add', () => {
  const spec = { op: 'nn.softmax', rows: null, cols: 64 } as const;
  const v4 = generateKernel(spec, 'x86-64-v4').mlir;
  assert.match(v4, /x86vector\.avx512\.mask\.scalef/);
  assert.match(v4, /llvm\.x86\.avx512\.mask\.reduce\.ps\.512/);
  assert.doesNotMatch(v4, /arith\.maximumf/);
  const v3 = generateKernel(spec, 'x86-64-v3').mlir;
  assert.doesNotMatch(v3, /x86vector|llvm\.x86/);
});

for (const target of runnableTargets(probeHost().x86Level)) {
  test(`vector softmax equals the reference over a wide range of logits on ${target} (seed ${seed})`, async () => {
    for (const cols of COLS) {
      const kernel = runtime.load(
        await compileKernel({ op: 'nn.softmax', rows: null, cols }, { target, cacheDir }),
      );
      // Logits spread over ±60: exp arguments reach −120, past the clamp at −87.
      const x = uniform(ROWS * cols, -60, 60);
      const out = new Float32Array(x.length);
      await kernel.run([x, out]);
      const want = reference.softmax(x, cols);
      // Each output is a probability: absolute error against 1, relative to the largest.
      assert.ok(maxDiff(out, want) <= 1e-6, `cols ${cols}: ${maxDiff(out, want)}`);
      for (let r = 0; r < ROWS; r++) {
        const sum = out.subarray(r * cols, (r + 1) * cols).reduce((s, v) => s + v, 0);
        assert.ok(Math.abs(sum - 1) <= 1e-5, `cols ${cols} row ${r} sums to ${sum}`);
      }
      // Rows hundreds apart: a row scaled by another row's max (the kernel takes the next row's max
      // in the current row's exp pass) would overflow or vanish.
      const shifted = x.map((v, i) => v + [300, -300, 0][Math.floor(i / cols) % 3]!);
      await kernel.run([shifted, out]);
      assert.ok(maxDiff(out, reference.softmax(shifted, cols)) <= 1e-6, `cols ${cols}: rows far apart`);
      // −∞ logits (a mask, as attention uses) weigh nothing, and the other columns still sum to 1;
      // every row keeps its column 0.
      const off = (i: number) => (i % cols) % 3 === 1;
      const masked = x.map((v, i) => (off(i) ? Number.NEGATIVE_INFINITY : v));
      await kernel.run([masked, out]);
      assert.ok(maxDiff(out, reference.softmax(masked, cols)) <= 1e-6, `cols ${cols}: masked`);
      assert.ok(
        out.every((v, i) => !off(i) || (v >= 0 && v < 1e-37)),
        `cols ${cols}: a −∞ logit gives 0`,
      );
      x[x.length - 1] = Number.NaN;
      await kernel.run([x, out]);
      assert.ok(out.subarray((ROWS - 1) * cols).every(Number.isNaN), `cols ${cols}: a NaN makes its row NaN`);
      assert.ok(out.subarray(0, cols).every(Number.isFinite));
    }
  });

  test(`softmax and rmsnorm give the same bits at any alignment of x and out on ${target} (seed ${seed})`, async () => {
    // Views 0–15 floats into their buffers, x and out apart: every masked head and tail length.
    const view = (data: Float32Array, offset: number) => {
      const v = new Float32Array(new ArrayBuffer((data.length + 16) * 4), offset * 4, data.length);
      v.set(data);
      return v;
    };
    for (const cols of [33, 64, 1031]) {
      const softmax = runtime.load(
        await compileKernel({ op: 'nn.softmax', rows: null, cols }, { target, cacheDir }),
      );
      const rmsnorm = runtime.load(
        await compileKernel({ op: 'nn.rmsnorm', rows: null, dim: cols, eps: 1e-5 }, { target, cacheDir }),
      );
      const data = uniform(ROWS * cols, -30, 30);
      const w = uniform(cols, -2, 2);
      const first: Float32Array[] = [];
      for (let offset = 0; offset < 16; offset++) {
        const x = view(data, offset);
        const outs = [
          view(new Float32Array(data.length), (offset + 5) % 16),
          view(new Float32Array(data.length), offset),
        ];
        await softmax.run([x, outs[0]!]);
        await rmsnorm.run([x, w, outs[1]!]);
        if (offset === 0) {
          assert.ok(maxDiff(outs[0]!, reference.softmax(data, cols)) <= 1e-6, `softmax cols ${cols}`);
          const want = reference.rmsnorm(data, w, cols, 1e-5);
          assert.ok(reference.relativeError(outs[1]!, want) <= 1e-5, `rmsnorm cols ${cols}`);
          first.push(...outs.map((o) => o.slice()));
        }
        assert.deepEqual(outs[0], first[0], `softmax cols ${cols} offset ${offset}`);
        assert.deepEqual(outs[1], first[1], `rmsnorm cols ${cols} offset ${offset}`);
      }
    }
  });

  test(`vector rmsnorm equals the reference on ${target} (seed ${seed})`, async () => {
    for (const dim of COLS) {
      const kernel = runtime.load(
        await compileKernel({ op: 'nn.rmsnorm', rows: null, dim, eps: 1e-5 }, { target, cacheDir }),
      );
      const x = uniform(ROWS * dim, -30, 30);
      const w = uniform(dim, -2, 2);
      const out = new Float32Array(x.length);
      await kernel.run([x, w, out]);
      const want = reference.rmsnorm(x, w, dim, 1e-5);
      assert.ok(reference.relativeError(out, want) <= 1e-5, `dim ${dim}`);
    }
  });
}
