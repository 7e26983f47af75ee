// Supervision backoff and clock-driven waits under a manual clock: time moves only when the test says.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { RestartBudget } from '../src/actor/supervisor.js';
import { DeadlineSweep, sleep } from '../src/clock.js';
import { ManualClock } from './fixtures/manual-clock.js';

const policy = { maxRestarts: 10, withinMs: 60_000, backoffMs: 50, maxBackoffMs: 300 };

describe('ManualClock', () => {
  test('fires timers only when advanced, earliest first, equal times in the order set', () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    clock.after(30, () => fired.push(`b@${clock.now()}`));
    clock.after(10, () => fired.push(`a@${clock.now()}`));
    clock.after(30, () => fired.push(`c@${clock.now()}`));
    const cancelled = clock.after(20, () => fired.push('cancelled'));
    cancelled.cancel();
    cancelled.cancel();
    assert.deepEqual(fired, []);
    clock.advance(29);
    assert.deepEqual(fired, ['a@10']);
    assert.equal(clock.now(), 29);
    clock.advance(1);
    assert.deepEqual(fired, ['a@10', 'b@30', 'c@30']);
    assert.equal(clock.pending, 0);
  });

  test('every() repeats until cancelled; a timer set by a callback fires within the same advance', () => {
    const clock = new ManualClock(0);
    const ticks: number[] = [];
    const t = clock.every(100, () => ticks.push(clock.now()));
    clock.after(150, () => clock.after(10, () => ticks.push(-clock.now())));
    clock.advance(350);
    assert.deepEqual(ticks, [100, -160, 200, 300]);
    t.cancel();
    clock.advance(1000);
    assert.deepEqual(ticks, [100, -160, 200, 300]);
  });
});

describe('RestartBudget under a manual clock', () => {
  test('backoff doubles per restart within the window, capped at maxBackoffMs', () => {
    const clock = new ManualClock();
    const budget = new RestartBudget(policy);
    const backoffs: number[] = [];
    for (let i = 0; i < 6; i++) {
      const d = budget.crashed(clock.now());
      assert.ok(d.restart);
      backoffs.push(d.backoffMs);
      clock.advance(d.backoffMs);
    }
    assert.deepEqual(backoffs, [50, 100, 200, 300, 300, 300]);
    assert.equal(budget.restarts, 6);
  });

  test('past maxRestarts within the window it says stop', () => {
    const clock = new ManualClock();
    const budget = new RestartBudget({ ...policy, maxRestarts: 3 });
    for (let i = 0; i < 3; i++) {
      assert.equal(budget.crashed(clock.now()).restart, true);
      clock.advance(1000);
    }
    assert.deepEqual(budget.crashed(clock.now()), { restart: false });
    assert.deepEqual(budget.crashed(clock.now()), { restart: false }, 'a refusal uses up nothing');
    assert.equal(budget.restarts, 3);
  });

  test('restarts older than withinMs no longer count, and the backoff starts over', () => {
    const clock = new ManualClock();
    const budget = new RestartBudget({ ...policy, maxRestarts: 3, withinMs: 10_000 });
    const start = clock.now();
    for (let i = 0; i < 3; i++) assert.equal(budget.crashed(clock.now()).restart, true);
    // One ms short of the window the three restarts still count.
    clock.advance(9_999);
    assert.deepEqual(budget.crashed(clock.now()), { restart: false });
    // At withinMs after them they are out of it.
    clock.advance(1);
    assert.equal(clock.now() - start, 10_000);
    assert.deepEqual(budget.crashed(clock.now()), { restart: true, backoffMs: 50 });
    assert.deepEqual(budget.crashed(clock.now()), { restart: true, backoffMs: 100 });
    assert.equal(budget.restarts, 5, 'the lifetime count keeps growing');
  });

  test('a supervisor scheduling restarts on the clock restarts only once the backoff has passed', () => {
    // What Activation#crash does: ask the budget, then restart `backoffMs` later on the cluster clock.
    const clock = new ManualClock();
    const budget = new RestartBudget(policy);
    let restarted = 0;
    const crash = () => {
      const d = budget.crashed(clock.now());
      if (d.restart) clock.after(d.backoffMs, () => restarted++);
      return d;
    };
    crash();
    clock.advance(49);
    assert.equal(restarted, 0);
    clock.advance(1);
    assert.equal(restarted, 1);
    crash();
    clock.advance(99);
    assert.equal(restarted, 1);
    clock.advance(1);
    assert.equal(restarted, 2);
  });
});

describe('sleep on a manual clock', () => {
  test('resolves only once the clock is advanced past it', async () => {
    const clock = new ManualClock();
    let done = false;
    const slept = sleep(clock, 1000).then(() => {
      done = true;
    });
    // Let every pending callback and microtask run: real time passing does not move this clock.
    await tick();
    await tick();
    assert.equal(done, false);
    clock.advance(999);
    await tick();
    assert.equal(done, false);
    clock.advance(1);
    await slept;
    assert.equal(done, true);
    assert.equal(clock.pending, 0);
  });

  test('sleeps resolve in the order of their deadlines, whatever the order they began', async () => {
    const clock = new ManualClock();
    const order: number[] = [];
    const all = Promise.all([300, 100, 200].map((ms) => sleep(clock, ms).then(() => order.push(ms))));
    clock.advance(300);
    await all;
    assert.deepEqual(order, [100, 200, 300]);
  });
});

describe('DeadlineSweep', () => {
  test('one timer ends each wait at its deadline, the earliest first, and none once cancelled', () => {
    const clock = new ManualClock(0);
    const waits = new Set<{ name: string; deadline: number }>();
    const ended: string[] = [];
    const sweep = new DeadlineSweep(
      clock,
      () => waits,
      (w) => {
        waits.delete(w);
        ended.push(`${w.name}@${clock.now()}`);
      },
    );
    const wait = (name: string, ms: number) => {
      const w = { name, deadline: clock.now() + ms };
      waits.add(w);
      sweep.added(w.deadline);
      return w;
    };
    wait('late', 30);
    wait('early', 10);
    const answered = wait('answered', 20);
    // A later deadline re-arms nothing: one timer stands for all three.
    assert.equal(clock.pending, 1);
    waits.delete(answered);
    clock.advance(10);
    assert.deepEqual(ended, ['early@10']);
    clock.advance(25);
    assert.deepEqual(ended, ['early@10', 'late@30']);
    assert.equal(clock.pending, 0);
    // What every wait ends with otherwise (a closed connection) cancels the timer.
    waits.delete(wait('rejected', 5));
    sweep.cancel();
    assert.equal(clock.pending, 0);
    // After a cancel the next wait arms a timer again.
    wait('next', 5);
    clock.advance(5);
    assert.deepEqual(ended, ['early@10', 'late@30', 'next@40']);
  });
});
