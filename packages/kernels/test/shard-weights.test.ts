// A rank's slices of the weights: the same bits as the model split by hand, and made without holding
// the event loop (a node slices on the loop that answers its heartbeats and its other actors).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LlamaConfig, type LlamaWeights, shardWeights, syntheticWeights } from '../src/index.js';

const config: LlamaConfig = {
  dim: 64,
  hiddenDim: 96,
  layers: 5,
  heads: 8,
  kvHeads: 4,
  vocab: 40,
  seqLen: 16,
};
const weights = syntheticWeights(config, 7);

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Rank `rank` of `tp`'s layers `[start, end)`, element by element from the layouts ([out, in], row-major). */
function byHand(w: LlamaWeights, tp: number, rank: number, [start, end]: [number, number]) {
  const c = w.config;
  const q = c.dim / tp;
  const kv = ((c.dim / c.heads) * c.kvHeads) / tp;
  const h = c.hiddenDim / tp;
  const rowsOf = (m: Float32Array, cols: number, n: number) =>
    Float32Array.from({ length: n * cols }, (_, k) => m[rank * n * cols + k]!);
  const colsOf = (m: Float32Array, cols: number, n: number) =>
    Float32Array.from(
      { length: (m.length / cols) * n },
      (_, k) => m[Math.floor(k / n) * cols + rank * n + (k % n)]!,
    );
  const each = (all: Float32Array[], f: (m: Float32Array) => Float32Array) => all.slice(start, end).map(f);
  return {
    rmsAtt: each(w.rmsAtt, (m) => m),
    wq: each(w.wq, (m) => rowsOf(m, c.dim, q)),
    wk: each(w.wk, (m) => rowsOf(m, c.dim, kv)),
    wv: each(w.wv, (m) => rowsOf(m, c.dim, kv)),
    wo: each(w.wo, (m) => colsOf(m, c.dim, q)),
    rmsFfn: each(w.rmsFfn, (m) => m),
    w1: each(w.w1, (m) => rowsOf(m, c.dim, h)),
    w2: each(w.w2, (m) => colsOf(m, c.hiddenDim, h)),
    w3: each(w.w3, (m) => rowsOf(m, c.dim, h)),
  };
}

/** What `start` resolves to, and how many turns of the event loop other callbacks got until then. */
async function turnsDuring<T>(start: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let pending = true;
  const tick = () => {
    if (!pending) return;
    turns++;
    setImmediate(tick);
  };
  // Queued before `start` runs, so whatever it does synchronously gives no turn.
  setImmediate(tick);
  const value = await start();
  pending = false;
  return { value, turns };
}

test('a rank of tp 2 and 4 over a range of layers holds the bits of the model split by hand', async () => {
  const range: [number, number] = [1, 4];
  for (const tp of [2, 4]) {
    for (let rank = 0; rank < tp; rank++) {
      const s = await shardWeights(weights, tp, rank, range);
      assert.deepEqual([s.tp, s.rank, s.layerStart, s.layerEnd], [tp, rank, ...range]);
      const want = byHand(weights, tp, rank, range);
      for (const key of Object.keys(want) as (keyof typeof want)[]) {
        assert.equal(s[key].length, 3, `${key} at tp ${tp}`);
        for (let l = 0; l < 3; l++)
          assert.ok(bytes(s[key][l]!).equals(bytes(want[key][l]!)), `${key}[${l}] of rank ${rank} of ${tp}`);
      }
      // Row slices stay views of the model: a rank holds copies of Wo's and W2's columns only.
      assert.equal(s.w1[0]!.buffer, weights.w1[1]!.buffer);
      assert.notEqual(s.w2[0]!.buffer, weights.w2[1]!.buffer);
    }
  }
});

test('slicing gives the event loop a turn per copied matrix (Wo and W2 of each layer)', async () => {
  const { value, turns } = await turnsDuring(() => shardWeights(weights, 2, 1, [1, 4]));
  assert.equal(value.wo.length, 3);
  assert.ok(turns >= 2 * 3, `${turns} turns for 6 copied matrices`);
});

test('a matrix over 16 MiB is copied over several turns, with the same bits', async () => {
  // W2 of 64 × 98,304 floats (24 MiB), whole at tp 1: two turns for it, one for Wo.
  const wide: LlamaConfig = { ...config, layers: 1, hiddenDim: 3 << 15 };
  const big = new Float32Array(wide.dim * wide.hiddenDim);
  for (let i = 0; i < big.length; i++) big[i] = (i % 1021) / 7;
  const w: LlamaWeights = {
    ...syntheticWeights({ ...wide, hiddenDim: 1 }, 3),
    config: wide,
    w1: [big],
    w2: [big],
    w3: [big],
  };
  const { value, turns } = await turnsDuring(() => shardWeights(w, 1, 0));
  assert.ok(turns >= 3, `${turns} turns for Wo and 24 MiB of W2`);
  assert.ok(bytes(value.w2[0]!).equals(bytes(big)));
});
