// The rules by which a chaos scenario counts: lost, duplicated, failed, recovery and latency, on
// hand-made records.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { percentile, type RequestRecord, summarize } from './chaos/measure.js';

const req = (key: string, sent: number, done: number, attempts = 1, ok = true, reply = 1): RequestRecord => ({
  key,
  sent,
  done,
  attempts,
  ok,
  reply,
});

test('lost, duplicated, failed and applied-but-unacknowledged come from the counters and the answers', () => {
  const records = [
    req('a', 0, 10),
    req('b', 0, 10), // answered, applied nowhere: lost
    req('c', 0, 10), // applied twice: one duplicate
    req('d', 0, 10, 3, false), // given up, yet applied once
    req('e', 0, 10, 1, true, 2), // answered "applied twice" though the counters say once
    req('f', 0, 10, 2, false), // given up, never applied
  ];
  const r = summarize(
    't',
    records,
    [
      { a: 1, c: 1, e: 1 },
      { c: 1, d: 1 },
    ],
    { faultAt: 1000, slowMs: 100 },
  );
  assert.deepEqual(
    [r.sent, r.succeeded, r.failed, r.lost, r.duplicated, r.applied_unacknowledged, r.retried],
    [6, 4, 2, 1, 2, 1, 2],
  );
});

test('recovery runs from the fault to the last disrupted answer; the heal has its own', () => {
  const fault = 10_000;
  const heal = 14_000;
  const records = [
    req('before', 9_000, 9_010),
    req('inflight', 9_950, 12_500, 2), // sent just before the fault, retried: counts for the fault
    req('slow', 10_500, 13_000), // one attempt, slower than slowMs
    req('fine', 11_000, 11_050),
    req('after-heal', 14_500, 15_200, 2),
    req('late', 16_000, 16_010),
  ];
  const r = summarize('t', records, [Object.fromEntries(records.map((x) => [x.key, 1]))], {
    faultAt: fault,
    healAt: heal,
    slowMs: 1000,
  });
  assert.equal(r.recovery_s, 3);
  assert.equal(r.recovery_after_heal_s, 1.2);
  assert.equal(r.p50_ms_before, 10);
  // During: slow (2500 ms) and fine (50 ms), sent between fault and heal.
  assert.equal(r.p99_ms_during, 2500);
  const calm = summarize('t', [req('x', 11_000, 11_020)], [{ x: 1 }], { faultAt: fault, slowMs: 1000 });
  assert.equal(calm.recovery_s, 0);
});

test('percentile is nearest-rank', () => {
  assert.equal(percentile([], 99), 0);
  assert.equal(percentile([5, 1, 3], 50), 3);
  assert.equal(
    percentile(
      Array.from({ length: 100 }, (_, i) => i + 1),
      99,
    ),
    99,
  );
});
