// A VectorIndex holds its usearch index on a worker thread of its own: `close` stops it, op-vector
// closes the index a new configure replaces, and an index dropped without `close` (the operator of
// an actor that stopped: the runtime has no stop hook) stops its thread once it is collected.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ActorContext } from '@stitch/runtime';
import { type OpConfig, VectorIndex, vectorOperator } from '../src/index.js';
import type { VectorState } from '../src/vector-operator.js';

const closed = (e: { code?: string }) => e.code === 'VECTOR_INDEX_CLOSED';
const v = (...xs: number[]) => new Float32Array(xs);

test('close: the calls waiting and any later one reject with VECTOR_INDEX_CLOSED', async () => {
  const index = new VectorIndex({ dim: 4, maxVectors: 10 });
  await index.add([1], v(1, 0, 0, 0));
  const searching = assert.rejects(index.search(v(1, 0, 0, 0), 1), closed);
  const waiting = assert.rejects(index.add([2], v(0, 1, 0, 0)), closed);
  await index.close();
  await Promise.all([searching, waiting]);
  await assert.rejects(index.save(join(tmpdir(), 'never-written.usearch')), closed);
  await assert.rejects(index.search(v(1, 0, 0, 0), 1), closed);
  // Arguments are still checked first, and closing again does nothing more.
  await assert.rejects(index.search(v(1, 0, 0), 1), (e: { code?: string }) => e.code === 'VECTOR_INVALID');
  await index.close();
  assert.equal(index.size, 1);
});

test('op-vector: a new configure closes the index it replaces', async () => {
  const s = (await vectorOperator.init!('search')) as VectorState;
  const config: OpConfig = {
    deployment: 'dep',
    opId: 'search',
    op: 'vector.search',
    attrs: { dim: 4, max_vectors: 10 },
    device: 'cpu',
    modelled: false,
    estimatedMs: 0,
    natsUrl: 'nats://127.0.0.1:4222',
    cluster: 'c',
  };
  const ctx = {} as ActorContext;
  await vectorOperator.handlers.configure(s, { config });
  const first = s.index!;
  await vectorOperator.handlers.insert(s, { rid: 'r1', keys: [1], vectors: [1, 0, 0, 0] }, ctx);
  assert.equal(first.size, 1);
  await vectorOperator.handlers.configure(s, { config });
  assert.notEqual(s.index, first);
  assert.equal(s.index!.size, 0);
  await assert.rejects(first.search(v(1, 0, 0, 0), 1), closed);
  await s.index!.close();
});

test('an index dropped without close stops its thread once it is garbage-collected', async () => {
  // The process's threads (Linux): the index's thread is one of them while it runs.
  const threads = () => readdirSync('/proc/self/task').length;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // A first thread starts what stays for good (libuv's pool, which its module loading uses).
  const first = new VectorIndex({ dim: 4, maxVectors: 1 });
  await first.add([1], v(1, 0, 0, 0));
  await first.close();
  const before = threads();
  await (async () => {
    const index = new VectorIndex({ dim: 4, maxVectors: 1 });
    await index.add([1], v(1, 0, 0, 0));
    assert.ok(threads() > before, 'the index has a thread');
  })();
  for (let i = 0; i < 100 && threads() > before; i++) {
    gc();
    await setTimeout(50);
  }
  assert.equal(threads(), before);
});
