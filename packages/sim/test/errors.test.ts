import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PlacementProblem } from '@stitch/planner';
import { SimError, SimErrorCode, type SimOptions, simulate } from '../src/index.js';

const problem = (): PlacementProblem => ({
  tasks: [
    { id: 'a', deps: [] },
    { id: 'b', deps: ['a'] },
  ],
  classes: [
    { id: 'x', usdPerHour: 1, linkGBps: 50, count: 1 },
    { id: 'y', usdPerHour: 2, linkGBps: 50, count: 4 },
  ],
  timeMs: [
    [5, 2],
    [5, 2],
  ],
  devices: [
    [1, 1],
    [1, 1],
  ],
  edges: [{ from: 'a', to: 'b', bytes: 1000 }],
});

const base = (): SimOptions => ({
  problem: problem(),
  slaMs: 100,
  arrivals: { kind: 'generator', rate: 10 },
  requests: 100,
});

function code(o: SimOptions): { code: string; message: string; exitCode: number } {
  try {
    simulate(o);
  } catch (e) {
    assert.ok(e instanceof SimError && e instanceof Error, `not a SimError: ${String(e)}`);
    assert.equal(e.name, 'SimError');
    return { code: e.code, message: e.message, exitCode: e.exitCode };
  }
  assert.fail('simulate accepted bad options');
}

test('SimErrorCode: unique, stable-looking values', () => {
  const values = Object.values(SimErrorCode);
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.match(v, /^SIM_[A-Z_]+$/);
});

test('bad options give SIM_INPUT naming the field, exit status 2', () => {
  const uncounted = problem();
  delete uncounted.classes[1]!.count;
  const cases: [string, Partial<SimOptions>][] = [
    ['options.slaMs', { slaMs: 0 }],
    ['options.requests', { requests: 0 }],
    ['options.arrivals.rate', { arrivals: { kind: 'generator', rate: -1 } }],
    ['options.arrivals.kind', { arrivals: { kind: 'poisson' } as never }],
    ['options.arrivals.entries[1].t', { arrivals: { kind: 'trace', entries: [{ t: 2 }, { t: 1 }] } }],
    [
      'options.arrivals.entries[0].shape',
      { arrivals: { kind: 'trace', entries: [{ t: 0, shape: 'huge' }] } },
    ],
    [
      'options.arrivals.diurnal.peakRatio',
      { arrivals: { kind: 'generator', rate: 1, diurnal: { peakRatio: 0.5 } } },
    ],
    ['options.noise.cv', { noise: { kind: 'lognormal', cv: -1 } }],
    ['options.shapes[0].scale', { shapes: [{ name: 's', scale: { nosuchop: 2 } }] }],
    ['options.placement[1]', { placement: ['x', 'z'] }],
    ['options.placement', { placement: ['x'] }],
    ['options.problem.classes[1]', { problem: uncounted }],
    ['options.problem', { problem: { ...problem(), timeMs: [[5, 2]] } }],
    ['options.problem.edges', { problem: { ...problem(), edges: [{ from: 'a', to: 'zz', bytes: 0 }] } }],
    ['options.controlPeriodS', { controlPeriodS: Number.NaN }],
    ['options.maxInFlight', { maxInFlight: 1.5 }],
    ['options.windowS', { durationS: 1e9, windowS: 1 }],
    ['policy decision', { policy: () => ({ placement: ['x', 'nope'] }) }],
  ];
  for (const [field, patch] of cases) {
    const e = code({ ...base(), controlPeriodS: 1, ...patch });
    assert.equal(e.code, SimErrorCode.Input, `${field}: ${e.message}`);
    assert.equal(e.exitCode, 2);
    assert.ok(e.message.includes(field), `${field} not named in: ${e.message}`);
  }
});

test('a placement the fleet cannot host is SIM_CAPACITY; an SLA no placement meets is SIM_PLAN', () => {
  const crowded = base();
  crowded.placement = ['x', 'x'];
  const cap = code(crowded);
  assert.equal(cap.code, SimErrorCode.Capacity);
  assert.equal(cap.exitCode, 3);
  assert.match(cap.message, /class x has 1 devices/);
  const tight = base();
  tight.slaMs = 1;
  assert.equal(code(tight).code, SimErrorCode.Plan);
});

test('past the in-flight limit arrivals are rejected and count as SLA misses', () => {
  const o = base();
  o.placement = ['x', 'y'];
  o.arrivals = { kind: 'generator', rate: 1000 };
  o.maxInFlight = 5;
  o.requests = 2000;
  const r = simulate(o);
  assert.ok(r.rejected > 0);
  assert.equal(r.completed + r.rejected, r.requests);
  assert.ok(r.slaAttainment <= r.completed / r.requests);
});
