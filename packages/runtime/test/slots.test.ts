import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptions } from '../src/errors.js';
import { DeviceSlots, parseVirtualDevice } from '../src/node/slots.js';

test('a device runs at most its slots at once; the rest wait first come first served', async () => {
  const slots = new DeviceSlots('h100', true, 2);
  const order: number[] = [];
  const a = await slots.acquire();
  const b = await slots.acquire();
  const waiting = [3, 4, 5].map(async (n) => {
    const release = await slots.acquire();
    order.push(n);
    return release;
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(slots.load(), { device: 'h100', modelled: true, slots: 2, busy: 2, queued: 3 });
  assert.deepEqual(order, []);
  a();
  a(); // a second release gives back nothing more
  const third = await waiting[0]!;
  assert.deepEqual(order, [3]);
  assert.deepEqual(slots.load(), { device: 'h100', modelled: true, slots: 2, busy: 2, queued: 2 });
  b();
  third();
  const [fourth, fifth] = await Promise.all([waiting[1]!, waiting[2]!]);
  assert.deepEqual(order, [3, 4, 5]);
  fourth!();
  fifth!();
  assert.deepEqual(slots.load(), { device: 'h100', modelled: true, slots: 2, busy: 0, queued: 0 });
});

test('modelled devices are named with their slots, one by default', () => {
  assert.deepEqual(parseVirtualDevice('h100'), { catalogId: 'h100', slots: 1 });
  assert.deepEqual(parseVirtualDevice('gaudi3:4'), { catalogId: 'gaudi3', slots: 4 });
  for (const bad of ['', 'h100:0', 'h100:', 'h 100', 'h100:-1', 'a.b'])
    assert.throws(() => parseVirtualDevice(bad), InvalidOptions, bad);
});
