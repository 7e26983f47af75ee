import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import fc from 'fast-check';
import { Mailbox } from '../src/internal.js';

test('turn-based: one turn at a time, FIFO order', async () => {
  const order: number[] = [];
  let running = 0;
  let maxRunning = 0;
  const box = new Mailbox<number>({ capacity: 100, perCaller: 25 }, 1, async (n) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await delay(1);
    order.push(n);
    running--;
  });
  for (let i = 0; i < 20; i++) assert.equal(box.offer(i, `c${i % 3}`), undefined);
  await box.idle();
  assert.deepEqual(order, [...Array(20).keys()]);
  assert.equal(maxRunning, 1);
  assert.equal(box.metrics().processed, 20);
  assert.equal(box.metrics().accepted, 20);
  // Twenty turns of at least 1 ms each: the summed handler time a control loop turns into utilisation.
  assert.ok(box.metrics().busyMs >= 10, `busyMs ${box.metrics().busyMs}`);
});

test('turns the metered test refuses (set-up) are left out of the load counters, not out of the queue', async () => {
  const box = new Mailbox<string>(
    { capacity: 100, perCaller: 25 },
    1,
    async (kind) => {
      if (kind === 'setup') await delay(30);
    },
    (kind) => kind !== 'setup',
  );
  box.offer('setup', 'a');
  assert.equal(box.depth + box.metrics().running, 1);
  box.offer('work', 'a');
  box.offer('work', 'a');
  await box.idle();
  const m = box.metrics();
  assert.equal(m.accepted, 2);
  assert.equal(m.processed, 2);
  assert.ok(m.busyMs < 30, `busyMs ${m.busyMs}`);
  assert.ok(m.turnMs.max < 30, `turnMs ${JSON.stringify(m.turnMs)}`);
});

test('bounded: refuses past capacity and past the per-caller share, never grows', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 1, max: 50 }),
      fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 200 }),
      (capacity, perCaller, callers) => {
        const box = new Mailbox<number>({ capacity, perCaller }, 1, () => new Promise(() => {}));
        const held = new Map<number, number>();
        for (const c of callers) {
          const refused = box.offer(c, `c${c}`);
          const total = [...held.values()].reduce((a, b) => a + b, 0);
          const mine = held.get(c) ?? 0;
          const expected = total >= capacity ? 'full' : mine >= perCaller ? 'caller' : undefined;
          assert.equal(refused, expected);
          if (!refused) held.set(c, mine + 1);
          assert.ok(box.depth + box.metrics().running <= capacity);
        }
      },
    ),
  );
});

test('concurrency > 1 runs up to that many turns; sync turns complete in the same tick', async () => {
  let running = 0;
  let maxRunning = 0;
  const box = new Mailbox<number>({ capacity: 100, perCaller: 25 }, 3, async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await delay(2);
    running--;
  });
  for (let i = 0; i < 12; i++) box.offer(i, 'a');
  await box.idle();
  assert.equal(maxRunning, 3);
  const seen: number[] = [];
  const sync = new Mailbox<number>({ capacity: 10, perCaller: 2 }, 1, (n) => {
    seen.push(n);
  });
  for (let i = 0; i < 5; i++) sync.offer(i, 'a');
  assert.deepEqual(seen, [0, 1, 2, 3, 4]);
});

test('pause holds turns, clear returns the queued ones and frees their callers', async () => {
  const seen: number[] = [];
  const box = new Mailbox<number>({ capacity: 4, perCaller: 2 }, 1, (n) => {
    seen.push(n);
  });
  box.pause();
  box.offer(1, 'a');
  box.offer(2, 'a');
  assert.equal(box.offer(3, 'a'), 'caller');
  assert.deepEqual(box.clear(), [1, 2]);
  assert.equal(box.offer(3, 'a'), undefined);
  box.resume();
  await box.idle();
  assert.deepEqual(seen, [3]);
  assert.equal(box.metrics().rejected, 1);
});

test('per-sender limits hold across many senders while idle ones are swept', () => {
  const finish: (() => void)[] = [];
  const box = new Mailbox<number>({ capacity: 10_000, perCaller: 2 }, 10_000, () => {
    return new Promise<void>((resolve) => finish.push(resolve));
  });
  // 600 senders, each at its limit: the table passes the sweep size with nobody idle.
  for (let s = 0; s < 600; s++) {
    assert.equal(box.offer(1, `s${s}`), undefined);
    assert.equal(box.offer(2, `s${s}`), undefined);
    assert.equal(box.offer(3, `s${s}`), 'caller');
  }
  // One sender done and idle; the others still at their limit after whatever sweeps ran.
  return (async () => {
    finish[0]!();
    finish[1]!();
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(box.offer(4, 's0'), undefined);
    assert.equal(box.offer(5, 's0'), undefined);
    assert.equal(box.offer(6, 's0'), 'caller');
    for (let s = 1; s < 600; s++) assert.equal(box.offer(7, `s${s}`), 'caller');
  })();
});

test('atRest: a step runs between turns, never inside one, and holds back the next turn until it ran', async () => {
  const log: string[] = [];
  let inTurn = 0;
  const box = new Mailbox<number>({ capacity: 100, perCaller: 100 }, 2, async (n) => {
    inTurn++;
    log.push(`start ${n}`);
    await delay(n === 0 ? 20 : 1);
    log.push(`end ${n}`);
    inTurn--;
  });
  let ranNow = false;
  box.atRest(() => {
    ranNow = inTurn === 0;
  });
  assert.ok(ranNow, 'with nothing running, the step runs at once');
  box.offer(0, 'a');
  box.offer(1, 'a');
  const seen: number[] = [];
  box.atRest(() => {
    seen.push(inTurn);
    log.push('step');
  });
  box.offer(2, 'a');
  await box.idle();
  assert.deepEqual(seen, [0], 'the step ran once, with no turn running');
  // Turns 0 and 1 were running (concurrency 2); 2 waited for the step.
  assert.ok(log.indexOf('step') > log.indexOf('end 0') && log.indexOf('step') > log.indexOf('end 1'));
  assert.ok(log.indexOf('start 2') > log.indexOf('step'), log.join(', '));
});

test('atRest: a step that throws does not stop the mailbox', async () => {
  const done: number[] = [];
  const box = new Mailbox<number>({ capacity: 10, perCaller: 10 }, 1, async (n) => {
    await delay(1);
    done.push(n);
  });
  box.offer(0, 'a');
  box.atRest(() => {
    throw new Error('step failed');
  });
  box.offer(1, 'a');
  await box.idle();
  assert.deepEqual(done, [0, 1]);
});
