import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isNodeInspection } from '../src/node/inspection.js';

/** A plain boolean: the type guard would narrow the test's own values. */
const reads = (v: unknown, nodeId = 'n1'): boolean => isNodeInspection(v, nodeId);

const actor = (mailbox: Record<string, unknown>): Record<string, unknown> => ({
  type: 'counter',
  id: 'c1',
  mailbox: { depth: 0, running: 0, accepted: 3, processed: 3, rejected: 0, busyMs: 1, ...mailbox },
});

test("a node's inspection is read only when it is one: every counter a count, the bounds of each type counts", () => {
  const good = {
    nodeId: 'n1',
    actors: [actor({ shed: 2 })],
    shedding: { shed: 2 },
    typeSlots: { limited: { slots: 2, busy: 1, queued: 0 } },
    reminders: { tracked: 9, owned: 4, fired: 12, retried: 0 },
  };
  assert.ok(reads(good));
  // Fields of a later version are optional: a node of an earlier one says nothing of them.
  assert.ok(reads({ nodeId: 'n1', actors: [actor({})] }));
  assert.ok(!reads(good, 'n2'), 'another node');
  assert.ok(!reads({ ...good, actors: [actor({ shed: -1 })] }));
  assert.ok(!reads({ ...good, actors: [actor({ shed: '2' })] }));
  for (const typeSlots of [
    [],
    null,
    { limited: { slots: 2, busy: -1, queued: 0 } },
    { limited: { slots: 2, busy: 1 } },
    { limited: 2 },
    Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`t${i}`, { slots: 1, busy: 0, queued: 0 }])),
  ])
    assert.ok(!reads({ ...good, typeSlots }), JSON.stringify(typeSlots).slice(0, 80));
  for (const reminders of [
    null,
    3,
    { tracked: 9, owned: 4, fired: 12 },
    { tracked: 9, owned: -4, fired: 1, retried: 0 },
  ])
    assert.ok(!reads({ ...good, reminders }), JSON.stringify(reminders));
});
