import assert from 'node:assert/strict';
import { test } from 'node:test';
import { partitionIndexName, vectorPartition } from '../src/index.js';
import { mergePartials, partialField } from '../src/vector-partitions.js';

test('vectorPartition: in range, the same every time, and keys in strides still spread', () => {
  for (const p of [1, 2, 3, 7, 64]) {
    const counts = new Array<number>(p).fill(0);
    for (let i = 0; i < 64_000; i++) {
      const key = i * 1000 + 2 ** 40;
      const at = vectorPartition(key, p);
      assert.ok(Number.isInteger(at) && at >= 0 && at < p);
      assert.equal(vectorPartition(key, p), at);
      counts[at]!++;
    }
    // Each partition within 10 % of an even share.
    for (const c of counts) assert.ok(Math.abs(c - 64_000 / p) < 0.1 * (64_000 / p), `${p}: ${counts}`);
  }
});

test('partitionIndexName puts i-of-P before the extension, or at the end of a name without one', () => {
  assert.equal(partitionIndexName('docs.usearch', 1, 3), 'docs.1-of-3.usearch');
  assert.equal(partitionIndexName('docs', 0, 2), 'docs.0-of-2');
  assert.equal(partitionIndexName('.hidden', 0, 2), '.hidden.0-of-2');
  assert.equal(partitionIndexName('docs.usearch', 0, 1), 'docs.usearch');
  assert.equal(partitionIndexName('/data/v1.2/docs', 2, 3), '/data/v1.2/docs.2-of-3');
  assert.equal(partitionIndexName('/data/v1.2/docs.usearch', 2, 3), '/data/v1.2/docs.2-of-3.usearch');
});

test('mergePartials keeps the k nearest of every partition, ties by key, and names a missing partition', () => {
  const ctx = {
    [partialField(0)]: [
      { key: 9, distance: 0.1 },
      { key: 3, distance: 0.5 },
    ],
    [partialField(1)]: [
      { key: 4, distance: 0.1 },
      { key: 1, distance: 0.2 },
    ],
  };
  assert.deepEqual(
    mergePartials(ctx, 2, 3).map((n) => n.key),
    [4, 9, 1],
  );
  assert.throws(() => mergePartials(ctx, 3, 3), /no answer from partition 2 of 3/);
});
