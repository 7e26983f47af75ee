// Continuous batching of decode (reference kernels, so results are exact): batched equals one at a
// time, sequences join and leave between steps, admission by KV slots with a bounded queue, cancel
// frees the slot, a reader that stops holds its sequence, and a handed-over KV cache equals recompute.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { argmax, Llama, type LlamaConfig, referenceOps, syntheticWeights } from '@stitch/kernels';
import { DecodeBatcher } from '../src/decode-batcher.js';
import { AgentsErrorCode } from '../src/errors.js';
import { decodeKv, encodeKv } from '../src/kv-handoff.js';

const config: LlamaConfig = {
  dim: 32,
  hiddenDim: 48,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab: 40,
  seqLen: 32,
};
const weights = syntheticWeights(config, 3);
const ops = referenceOps(config);
const jobs = [
  { prompt: [1, 2, 3], steps: 9 },
  { prompt: [5], steps: 4 },
  { prompt: [9, 8, 7, 6, 5, 4], steps: 12 },
  { prompt: [2, 2], steps: 1 },
  { prompt: [30, 1], steps: 7 },
];

async function firstToken(prompt: number[]) {
  const m = new Llama(weights, ops);
  return argmax(await m.prefill(prompt));
}

test('batched decode gives every job the tokens it gets alone, jobs joining and leaving', async () => {
  const alone = new DecodeBatcher(weights, ops, { maxSequences: 1, maxBatch: 1, maxQueued: 10 });
  const expected: number[][] = [];
  for (const j of jobs) expected.push(await alone.decode({ ...j, first: await firstToken(j.prompt) }));
  const batcher = new DecodeBatcher(weights, ops, { maxSequences: 3, maxBatch: 3, maxQueued: 10 });
  // Three start at once, the other two wait for a slot and join mid-way; short ones leave first.
  const firsts = await Promise.all(jobs.map((j) => firstToken(j.prompt)));
  const got = await Promise.all(jobs.map((j, i) => batcher.decode({ ...j, first: firsts[i]! })));
  assert.deepEqual(got, expected);
  const stats = batcher.stats();
  assert.equal(
    stats.tokens,
    jobs.reduce((n, j) => n + Math.max(0, j.steps - 1), 0),
  );
  assert.ok(
    stats.steps < stats.tokens,
    `steps ${stats.steps} < tokens ${stats.tokens}: sequences shared steps`,
  );
  assert.equal(stats.freeSlots, 3);
});

test('admission: a full batcher queues, refuses past its queue, and a cancel frees a slot', async () => {
  const batcher = new DecodeBatcher(weights, ops, { maxSequences: 2, maxBatch: 2, maxQueued: 1 });
  const hold: (() => void)[] = [];
  // Readers that stop after the first token: their sequences hold their KV slots.
  const stuck = () => new Promise<void>((r) => hold.push(r));
  const a = new AbortController();
  const first = batcher.decode({ prompt: [1], first: 1, steps: 20, emit: stuck, signal: a.signal });
  const second = batcher.decode({ prompt: [2], first: 2, steps: 20, emit: stuck });
  await delay(20);
  const third = batcher.decode({ prompt: [3], first: 3, steps: 3 });
  await delay(5);
  assert.deepEqual(
    { active: batcher.stats().active, queued: batcher.stats().queued },
    { active: 0, queued: 1 },
    'two hold their slots (still emitting the first token), one waits',
  );
  await assert.rejects(
    batcher.decode({ prompt: [4], first: 4, steps: 3 }),
    (err: { code?: string }) => err.code === AgentsErrorCode.BatchQueueFull,
  );
  a.abort(new Error('cancelled by the caller'));
  hold.shift()!();
  await assert.rejects(first, /cancelled by the caller/);
  // The freed slot admits the waiting job, which runs to the end.
  assert.equal((await third).length, 3);
  for (const release of hold.splice(0)) release();
  // The second job's reader is released one token at a time: it finishes too.
  const drain = setInterval(() => {
    for (const release of hold.splice(0)) release();
  }, 1);
  assert.equal((await second).length, 20);
  clearInterval(drain);
  assert.equal(batcher.stats().freeSlots, 2);
  assert.equal(batcher.stats().refused, 1);
});

test('a reader that stops reading holds its sequence back; the others go on', async () => {
  const batcher = new DecodeBatcher(weights, ops, { maxSequences: 2, maxBatch: 2, maxQueued: 0 });
  let read = 0;
  let release: (() => void) | undefined;
  const slow = batcher.decode({
    prompt: [1, 2],
    first: 1,
    steps: 10,
    emit: async () => {
      if (++read === 3) await new Promise<void>((r) => (release = r));
    },
  });
  const fast = await batcher.decode({ prompt: [3], first: 3, steps: 15 });
  assert.equal(fast.length, 15);
  assert.equal(read, 3, 'no token was made for the stopped reader while it did not read');
  release!();
  assert.equal((await slow).length, 10);
});

test('decode from a handed-over KV cache equals decode that prefills the prompt itself', async () => {
  const prompt = [4, 8, 15, 16, 23, 42 % 40];
  const prefiller = new Llama(weights, ops);
  const first = argmax(await prefiller.prefill(prompt));
  const kv = prefiller.exportKv();
  const batcher = new DecodeBatcher(weights, ops, { maxSequences: 2, maxBatch: 2, maxQueued: 2 });
  const [handed, recomputed] = await Promise.all([
    batcher.decode({ kv, prompt: [], first, steps: 10 }),
    batcher.decode({ prompt, first, steps: 10 }),
  ]);
  assert.deepEqual(handed, recomputed);
  await assert.rejects(batcher.decode({ kv: { ...kv, k: kv.k.subarray(3) }, prompt, first, steps: 3 }));
  assert.equal(batcher.stats().freeSlots, 2, 'a refused import gives its slot back');
});

test('a KV cache survives its encoding for the hand-off; other bytes are not one', async () => {
  const prefiller = new Llama(weights, ops);
  await prefiller.prefill([1, 2, 3, 4]);
  const kv = prefiller.exportKv();
  const bytes = encodeKv(kv);
  assert.deepEqual(decodeKv(Buffer.from(bytes)), kv);
  assert.equal(decodeKv(bytes.subarray(0, bytes.length - 4)), undefined);
  assert.equal(decodeKv(new Uint8Array(8)), undefined);
  const forged = Uint8Array.from(bytes);
  forged[0] = 0;
  assert.equal(decodeKv(forged), undefined);
});
