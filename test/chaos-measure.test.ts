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
    { faultAt: 1000, timeoutMs: 2000, slowMs: 100 },
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
    timeoutMs: 2000,
    slowMs: 1000,
  });
  assert.equal(r.recovery_s, 3);
  assert.equal(r.recovery_after_heal_s, 1.2);
  assert.equal(r.p50_ms_before, 10);
  // During: slow (2500 ms) and fine (50 ms), sent between fault and heal.
  assert.equal(r.p99_ms_during, 2500);
  const calm = summarize('t', [req('x', 11_000, 11_020)], [{ x: 1 }], {
    faultAt: fault,
    timeoutMs: 2000,
    slowMs: 1000,
  });
  assert.equal(calm.recovery_s, 0);
});

test('by default an answer is slow past 5 × the steady p99 before the fault, within 100 ms … the ask timeout', () => {
  const fault = 10_000;
  // The first half of the run (a warm-up, 400 ms answers) is not the steady state; the second is (20 ms).
  const warm = Array.from({ length: 10 }, (_, i) => req(`w${i}`, i * 500, i * 500 + 400));
  const steady = Array.from({ length: 10 }, (_, i) => req(`s${i}`, 5_000 + i * 500, 5_000 + i * 500 + 20));
  const late = [req('held', 10_100, 10_700), req('ok', 10_200, 10_290)];
  const records = [...warm, ...steady, ...late];
  const applied = [Object.fromEntries(records.map((x) => [x.key, 1]))];
  const r = summarize('t', records, applied, { faultAt: fault, timeoutMs: 2000 });
  assert.equal(r.slow_ms, 100);
  // held (600 ms) was slowed by the fault; ok (90 ms) was not.
  assert.equal(r.recovery_s, 0.7);
  const slowSteady = records.map((x) => (x.key.startsWith('s') ? { ...x, done: x.sent + 300 } : x));
  assert.equal(summarize('t', slowSteady, applied, { faultAt: fault, timeoutMs: 2000 }).slow_ms, 1500);
  assert.equal(summarize('t', slowSteady, applied, { faultAt: fault, timeoutMs: 1000 }).slow_ms, 1000);
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
