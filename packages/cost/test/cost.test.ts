import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  applyMeasuredPeaks,
  CorrectionTable,
  CostError,
  deviceHourlyCost,
  devicePeaks,
  estimateOp,
  findDevice,
  PAPER_CATALOG,
  parseCatalog,
} from '../src/index.js';
import { annuity } from '../src/internal.js';

const h100 = findDevice(PAPER_CATALOG, 'h100');

describe('catalog', () => {
  it('keeps Table 5 and dense peaks apart and has no FP8 on A40', () => {
    assert.equal(devicePeaks(h100, 'fp16', 'paper')!.flopsPerS, 1979e12);
    assert.equal(devicePeaks(h100, 'fp16', 'dense')!.flopsPerS, 989e12);
    assert.equal(devicePeaks(findDevice(PAPER_CATALOG, 'a40'), 'fp8'), null);
    assert.ok(PAPER_CATALOG.some((d) => d.id === 'cpu' && d.kind === 'cpu'));
  });

  it('extends the catalog from a user file and overrides known devices field by field', () => {
    const cat = parseCatalog({
      devices: [
        {
          id: 'l40s',
          vendor: 'NVIDIA',
          price_usd: 9000,
          memory_gb: 48,
          mem_bw_gbps: 864,
          dense_bf16_tflops: 362,
          fp8_tflops: 733,
          op_cost_usd_per_hour: 0.2,
          tdp_w: 350,
        },
        { id: 'h100', tdp_w: 650 },
      ],
    });
    assert.equal(cat.length, PAPER_CATALOG.length + 1);
    assert.equal(findDevice(cat, 'l40s').spec.memBwGbps, 864);
    assert.equal(findDevice(cat, 'h100').spec.tdpW, 650);
    assert.equal(findDevice(cat, 'h100').paper?.fp16Tflops, 1979);
  });

  it('rejects a bad catalog with a code and the path of the bad field', () => {
    assert.throws(
      () => parseCatalog({ devices: [{ id: 'x1', memory_gb: -3 }] }),
      (e: unknown) =>
        e instanceof CostError &&
        e.code === 'CATALOG_INVALID' &&
        /devices\[0\]\.price_usd|memory_gb/.test(e.message),
    );
    assert.throws(() => parseCatalog({ devices: [] }), /catalog\.devices must be a non-empty array/);
    // A rate of 0 would make every time through it Infinity, or NaN for 0 bytes.
    for (const key of ['mem_bw_gbps', 'dense_bf16_tflops', 'scale_up_gbps', 'scale_out_gbps', 'max_scale_up'])
      assert.throws(
        () => parseCatalog({ devices: [{ id: 'h100', [key]: 0 }] }),
        (e: unknown) =>
          e instanceof CostError &&
          e.code === 'CATALOG_INVALID' &&
          new RegExp(`${key}.*positive`).test(e.message),
        key,
      );
    assert.throws(
      () => findDevice(PAPER_CATALOG, 'tpu9'),
      (e: unknown) => e instanceof CostError && e.code === 'DEVICE_UNKNOWN',
    );
  });

  it('measured peaks replace spec peaks', () => {
    const cat = applyMeasuredPeaks(PAPER_CATALOG, { deviceId: 'cpu', gflops: 200, gbps: 20 });
    const p = devicePeaks(findDevice(cat, 'cpu'), 'fp16')!;
    assert.deepEqual([p.flopsPerS, p.bytesPerS, p.source], [200e9, 20e9, 'measured']);
    assert.throws(() => applyMeasuredPeaks(PAPER_CATALOG, { deviceId: 'cpu', gflops: 0, gbps: 1 }), /gflops/);
  });
});

describe('roofline', () => {
  it('takes the larger of compute and memory time plus static latency (hand-computed)', () => {
    // 1e12 FLOP / 1979e12 = 0.5053 ms; 3.35e9 B / 3350e9 B/s = 1 ms; static 0.01 ms.
    const est = estimateOp(
      { flops: 1e12, bytesRead: 3e9, bytesWritten: 0.35e9, memoryBytes: 1e9, networkBytes: 0 },
      h100,
    );
    assert.equal(est.bound, 'memory');
    assert.equal(est.devices, 1);
    assert.ok(Math.abs(est.ms - 1.01) < 1e-9, `got ${est.ms}`);
  });

  it('splits an op that does not fit one device tensor-parallel and charges the all-reduce', () => {
    // 100 GB > 0.9 × 80 GB → 2 devices; all-reduce of 1 GB over 2: 2·1/2 · 1e9/450e9 s + 2 steps × 5 µs.
    const d = { flops: 0, bytesRead: 6.7e9, bytesWritten: 1e9, memoryBytes: 100e9, networkBytes: 0 };
    const est = estimateOp(d, h100);
    assert.equal(est.tensorParallel, 2);
    const memMs = (7.7e9 / (2 * 3350e9)) * 1e3;
    const arMs = (1e9 / 450e9) * 1e3 + 0.01;
    assert.ok(Math.abs(est.ms - (memMs + arMs + 0.01)) < 1e-9, `got ${est.ms}`);
  });

  it('reports an op that no chassis pipeline can hold as infeasible, not a throw', () => {
    const est = estimateOp(
      { flops: 1, bytesRead: 1, bytesWritten: 1, memoryBytes: 1e15, networkBytes: 0 },
      h100,
    );
    assert.equal(est.feasible, false);
    assert.match(est.reason!, /needs \d+ h100 devices/);
  });

  it('is monotone in FLOPs and bytes', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e15, noNaN: true }),
        fc.double({ min: 0, max: 1e12, noNaN: true }),
        (f, b) => {
          const a = estimateOp(
            { flops: f, bytesRead: b, bytesWritten: 0, memoryBytes: 1e9, networkBytes: 0 },
            h100,
          );
          const more = estimateOp(
            { flops: f * 2, bytesRead: b * 2, bytesWritten: 0, memoryBytes: 1e9, networkBytes: 0 },
            h100,
          );
          return more.ms >= a.ms;
        },
      ),
    );
  });
});

describe('TCO', () => {
  it('annuity over 4 years at 8 % plus the paper operating cost', () => {
    const yearly = (25000 * 0.08) / (1 - 1.08 ** -4);
    const h = deviceHourlyCost(h100);
    assert.ok(Math.abs(h.totalUsdPerHour - (yearly / 8760 + 0.6)) < 1e-12);
    assert.equal(annuity(1200, 0, 4), 300);
    const tdp = deviceHourlyCost(h100, { power: 'tdp' });
    assert.ok(Math.abs(tdp.operatingUsdPerHour - 0.7 * 0.4) < 1e-12);
  });
});

describe('CorrectionTable', () => {
  it('moves the factor toward measured/estimated and shifts estimates with it', () => {
    const t = new CorrectionTable({ alpha: 0.5 });
    assert.equal(t.apply('llm', 'h100', 10), 10);
    t.observe('llm', 'h100', 10, 20);
    assert.ok(Math.abs(t.factor('llm', 'h100') - 2) < 1e-12);
    for (let k = 0; k < 30; k++) t.observe('llm', 'h100', 10, 15);
    assert.ok(Math.abs(t.factor('llm', 'h100') - 1.5) < 1e-6);
    assert.equal(t.factor('llm', 'b200'), 1);
    const back = CorrectionTable.restore(t.snapshot());
    assert.equal(back.factor('llm', 'h100'), t.factor('llm', 'h100'));
  });

  it("corrects an op by its own factor once measured opSamples times; its kind's pools every op", () => {
    const t = new CorrectionTable({ alpha: 1, opSamples: 2 });
    const prefill = { deployment: 'chat', op: 'prefill' };
    const decode = { deployment: 'chat', op: 'decode' };
    t.observe('llm', 'h100', 10, 5, prefill);
    // One sample: the kind's factor (the latest sample, alpha 1) still speaks for the op.
    assert.equal(t.observe('llm', 'h100', 10, 40, decode), 4);
    assert.equal(t.factor('llm', 'h100', prefill), 4);
    t.observe('llm', 'h100', 10, 5, prefill);
    t.observe('llm', 'h100', 10, 40, decode);
    assert.equal(t.factor('llm', 'h100', prefill), 0.5);
    assert.equal(t.apply('llm', 'h100', 10, decode), 40);
    // The kind's factor is the latest sample of either op; an op never measured, or one measured
    // elsewhere, gets it.
    assert.equal(t.factor('llm', 'h100'), 4);
    assert.equal(t.factor('llm', 'h100', { deployment: 'other', op: 'prefill' }), 4);
    assert.equal(t.factor('llm', 'b200', prefill), 1);
    assert.equal(CorrectionTable.restore(t.snapshot(), { opSamples: 2 }).factor('llm', 'h100', prefill), 0.5);
  });

  it('forgets a deployment, snapshots one, and keeps maxOps op entries, the least recently measured dropped', () => {
    const t = new CorrectionTable({ alpha: 1, opSamples: 1, maxOps: 2 });
    const op = (deployment: string, id: string) => ({ deployment, op: id });
    t.observe('nn', 'cpu', 1, 2, op('a', 'x'));
    t.observe('nn', 'cpu', 1, 3, op('b', 'x'));
    assert.deepEqual(Object.keys(t.snapshot('a')).sort(), ['a/x@cpu', 'nn@cpu']);
    assert.deepEqual(t.snapshot('a')['a/x@cpu'], {
      kind: 'nn',
      deviceId: 'cpu',
      deployment: 'a',
      op: 'x',
      factor: 2,
      samples: 1,
    });
    t.observe('nn', 'cpu', 1, 5, op('a', 'x'));
    t.observe('nn', 'cpu', 1, 7, op('c', 'x'));
    assert.deepEqual(Object.keys(t.snapshot()).sort(), ['a/x@cpu', 'c/x@cpu', 'nn@cpu']);
    t.forgetDeployment('a');
    assert.equal(t.factor('nn', 'cpu', op('a', 'x')), 7);
    assert.equal(t.factor('nn', 'cpu', op('c', 'x')), 7);
    assert.deepEqual(Object.keys(t.snapshot()).sort(), ['c/x@cpu', 'nn@cpu']);
    const kindsOnly = new CorrectionTable({ maxOps: 0 });
    kindsOnly.observe('nn', 'cpu', 1, 2, op('a', 'x'));
    assert.deepEqual(Object.keys(kindsOnly.snapshot()), ['nn@cpu']);
    for (const bad of [{ opSamples: -1 }, { maxOps: 1.5 }, { maxOps: Number.NaN }])
      assert.throws(
        () => new CorrectionTable(bad),
        (e: unknown) => e instanceof CostError && e.code === 'COST_INPUT',
      );
  });

  it('clamps factors and rejects non-positive samples', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1e-6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 20 }),
        (xs) => {
          const t = new CorrectionTable();
          for (const x of xs) t.observe('nn', 'cpu', 1, x);
          const f = t.factor('nn', 'cpu');
          return f >= 0.05 && f <= 20;
        },
      ),
    );
    assert.throws(
      () => new CorrectionTable().observe('nn', 'cpu', 1, 0),
      (e: unknown) => e instanceof CostError && e.code === 'COST_INPUT',
    );
  });
});
