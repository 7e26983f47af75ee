import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptions } from '../src/errors.js';
import {
  encodeReminder,
  MAX_REMINDER_MESSAGE_BYTES,
  nextDue,
  parseReminder,
  reminderRecord,
} from '../src/reminders/record.js';
import { encode } from '../src/wire/codec.js';

const ref = { type: 'alarm', id: 'a1' };
const message = { type: 'ring' };

test('a record is due dueMs from now (periodMs, or at once, when dueMs is absent) and reads back as it was', () => {
  const r = reminderRecord(ref, 'r', { message, periodMs: 500 }, 1000);
  assert.equal(r.dueAt, 1500);
  assert.equal(reminderRecord(ref, 'r', { message }, 1000).dueAt, 1000);
  assert.equal(reminderRecord(ref, 'r', { message, dueMs: 7, periodMs: 500 }, 1000).dueAt, 1007);
  assert.deepEqual(parseReminder('alarm.a1.r', encodeReminder(r)), r);
});

test('what is not a record of its key reads as none', () => {
  const good = reminderRecord(ref, 'r', { message }, 0);
  for (const [key, bytes] of [
    ['alarm.a1.r', new Uint8Array([0xc1])],
    ['alarm.a1.r', encode(null)],
    ['alarm.a1.other', encodeReminder(good)],
    ['alarm.a1.r', encode({ ...good, v: 2 })],
    ['alarm.a1.r', encode({ ...good, periodMs: 5 })],
    ['alarm.a1.r', encode({ ...good, dueAt: 1.5 })],
    ['alarm.a1.r', encode({ ...good, mode: 'sometimes' })],
    ['alarm.a1.r', encode({ ...good, message: 'ring' })],
    ['alarm.a1.r', encode({ ...good, message: new Uint8Array(MAX_REMINDER_MESSAGE_BYTES + 1) })],
  ] as const)
    assert.equal(
      parseReminder(key, bytes),
      undefined,
      `${key} ${Buffer.from(bytes).toString('hex').slice(0, 40)}`,
    );
});

test('options are checked before anything is stored', () => {
  for (const o of [
    { message, periodMs: 99 },
    { message, periodMs: 367 * 24 * 3600 * 1000 },
    { message, dueMs: -1 },
    { message: {} as never },
    { message, mode: 'later' as never },
    null as never,
  ])
    assert.throws(() => reminderRecord(ref, 'r', o, 0), InvalidOptions);
  assert.throws(() => reminderRecord(ref, 'a.b', { message }, 0), InvalidOptions);
  assert.throws(() => reminderRecord({ type: 'x y', id: 'a' }, 'r', { message }, 0), InvalidOptions);
});

test('a periodic reminder is next due on its grid, once for all the ticks that passed', () => {
  assert.equal(nextDue(1000, 100, 1050), 1100);
  assert.equal(nextDue(1000, 100, 1100), 1200);
  assert.equal(nextDue(1000, 100, 1950), 2000);
  assert.equal(nextDue(1000, 100, 999), 1100);
});
