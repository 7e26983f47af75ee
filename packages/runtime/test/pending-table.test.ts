import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PendingTable } from '../src/cluster/pending-table.js';

const ask = (seq: number) => ({ seq });

test('asks are found by sequence number until deleted, across growth', () => {
  const t = new PendingTable<{ seq: number }>();
  const asks = Array.from({ length: 5000 }, (_, i) => ask(i));
  for (const a of asks) t.add(a);
  assert.equal(t.size, 5000);
  for (const a of asks) assert.equal(t.get(a.seq), a);
  for (const a of asks.filter((a) => a.seq % 2 === 0)) assert.ok(t.delete(a));
  assert.equal(t.size, 2500);
  assert.equal(t.get(10), undefined);
  assert.equal(t.get(11), asks[11]);
  assert.equal(t.delete(asks[10]!), false, 'a second delete reports that it was gone');
  assert.equal(t.get(Number.NaN), undefined, 'an unparseable token finds nothing');
  assert.deepEqual(
    t
      .values()
      .map((a) => a.seq)
      .sort((x, y) => x - y),
    asks.filter((a) => a.seq % 2 === 1).map((a) => a.seq),
  );
});

test('an old ask that outlives a ring of newer ones moves aside and is still found', () => {
  const t = new PendingTable<{ seq: number }>();
  const stuck = ask(0);
  t.add(stuck);
  // Steady traffic: each newer ask settles at once, so the ring never grows past its first size.
  for (let seq = 1; seq < 10_000; seq++) {
    const a = ask(seq);
    t.add(a);
    assert.ok(t.delete(a));
  }
  assert.equal(t.size, 1);
  assert.equal(t.get(0), stuck);
  assert.deepEqual(t.values(), [stuck]);
  assert.ok(t.delete(stuck));
  assert.equal(t.size, 0);
  t.add(ask(10_000));
  t.clear();
  assert.equal(t.get(10_000), undefined);
});
