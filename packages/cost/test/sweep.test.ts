import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CostError,
  CostErrorCode,
  DEFAULT_SWEEP_RANGES,
  deviceHourlyCost,
  devicePeaks,
  parseCatalog,
  resolveSweepRanges,
  type SweepResult,
  sweepTco,
} from '../src/index.js';

// Two devices with the same silicon (an MI300X's figures), so the one with the lower $ per hour
// serves every scenario more cheaply; only their money differs from test to test.
const chip = (id: string, priceUsd: number, opCost: number, tdpW: number) => ({
  id,
  price_usd: priceUsd,
  memory_gb: 192,
  mem_bw_gbps: 5300,
  dense_bf16_tflops: 1307,
  fp8_tflops: 2615,
  op_cost_usd_per_hour: opCost,
  tdp_w: tdpW,
  scale_up_gbps: 448,
});
const twins = (x: object, y: object) => parseCatalog({ replace: true, devices: [x, y] });

/** Capital $/h of the study's financing: price · i/(1 − (1+i)^−n) / 8760 at 8 %, 4 years. */
const capital = (price: number) => (price * 0.08) / (1 - 1.08 ** -4) / 8760;

const param = (r: SweepResult, id: string) => {
  const p = r.parameters.find((x) => x.id === id);
  assert.ok(p, `parameter ${id}`);
  return p;
};

/** The same regions in every scenario: a fleet of two identical chips has no scenario effects. */
function sameRegionsEverywhere(r: SweepResult, id: string, expected: [number, number, string][]) {
  const p = param(r, id);
  for (const s of p.series) {
    assert.deepEqual(
      s.regions.map((g) => [g.from, g.to, g.pair]),
      expected,
      `${id} in ${s.scenario}`,
    );
  }
}

describe('sweepTco', () => {
  it('a price change flips the winner exactly where the cheaper $/h changes sides', () => {
    // y costs 1.1× x and runs the same, so y wins iff its price multiplier k < 1/1.1 = 0.909,
    // and x loses iff its own k > 1.1.
    const catalog = twins(chip('x', 20000, 0.5, 750), chip('y', 22000, 0.5, 750));
    const r = sweepTco({ catalog, devices: ['x', 'y'] });
    assert.equal(r.scenarios.length, 16);
    for (const b of r.base) {
      assert.equal(b.pair, 'x::x');
      assert.ok(b.margin !== null && b.margin < 1);
    }
    sameRegionsEverywhere(r, 'price:y', [
      [0.7, 0.85, 'y::y'],
      [1, 1.3, 'x::x'],
    ]);
    sameRegionsEverywhere(r, 'price:x', [
      [0.7, 1, 'x::x'],
      [1.15, 1.3, 'y::y'],
    ]);
    // Financing and utilisation scale both capitals alike, and their operating costs are equal.
    for (const id of ['years', 'interest', 'power-price', 'utilisation'])
      assert.equal(param(r, id).flips, 0, id);
    // The base winner's margin passes 1 exactly where the winner changes.
    for (const s of param(r, 'price:y').series) {
      s.points.forEach((pt) => {
        assert.ok(pt.margin !== null);
        assert.equal(pt.margin > 1, pt.pair !== 'x::x');
      });
    }
    assert.equal(param(r, 'efficiency:y').flips, 0, 'a slower y never beats x');
  });

  it('utilisation: capital-heavy y wins above the closed-form break-even, x below it', () => {
    // $ per busy hour = capital/u + op. With y's op cost set so that the two are equal at
    // u* = 0.45, x (cheap, hungry) wins below u* and y above.
    const uStar = 0.45;
    const opX = 0.9;
    const opY = opX - (capital(30000) - capital(20000)) / uStar;
    const catalog = twins(chip('x', 20000, opX, 750), chip('y', 30000, opY, 750));
    const r = sweepTco({ catalog, devices: ['x', 'y'], ranges: { utilisation: [0.3, 1] } });
    assert.deepEqual(param(r, 'utilisation').values, [0.3, 0.475, 0.65, 0.825, 1]);
    sameRegionsEverywhere(r, 'utilisation', [
      [0.3, 0.3, 'x::x'],
      [0.475, 1, 'y::y'],
    ]);
  });

  it('power price under TDP billing: the break-even $/kWh from the TDP gap', () => {
    // $/h = capital + TDP kW · $/kWh; equal at $0.35/kWh when the TDP gap is Δcapital / 0.35.
    const gapKw = (capital(25000) - capital(20000)) / 0.35;
    const catalog = twins(chip('x', 20000, 0, 1000), chip('y', 25000, 0, 1000 - gapKw * 1000));
    const r = sweepTco({ catalog, devices: ['x', 'y'], tco: { power: 'tdp' } });
    assert.deepEqual(param(r, 'power-price').values, [0.1, 0.25, 0.4, 0.55, 0.7]);
    sameRegionsEverywhere(r, 'power-price', [
      [0.1, 0.25, 'x::x'],
      [0.4, 0.7, 'y::y'],
    ]);
    for (const b of r.base) assert.equal(b.pair, 'y::y');
  });

  it('bad ranges and point counts are SWEEP_RANGE errors naming the range', () => {
    const bad: [object, RegExp][] = [
      [{ ranges: { years: [6, 3] } }, /years/],
      [{ ranges: { years: [0, 3] } }, /years/],
      [{ ranges: { price: 1.2 } }, /price/],
      [{ ranges: { price: -0.1 } }, /price/],
      [{ ranges: { utilisation: [0, 1] } }, /utilisation/],
      [{ ranges: { efficiency: [0.5, 1.5] } }, /efficiency/],
      [{ ranges: { annualInterest: [Number.NaN, 0.1] } }, /annualInterest/],
      [{ ranges: { usdPerKwh: [0.1] } }, /usdPerKwh/],
      [{ points: 1 }, /points/],
      [{ points: 2.5 }, /points/],
      [{ points: 1000 }, /points/],
    ];
    for (const [options, name] of bad) {
      assert.throws(
        () => sweepTco(options),
        (e: unknown) =>
          e instanceof CostError &&
          e.code === CostErrorCode.SweepRange &&
          name.test(e.message) &&
          e.exitCode === 2,
        JSON.stringify(options),
      );
    }
  });

  it('defaults: the issue ranges (±30 % prices, 3–6 years) and the base value among the points', () => {
    assert.deepEqual(resolveSweepRanges(), DEFAULT_SWEEP_RANGES);
    assert.equal(DEFAULT_SWEEP_RANGES.price, 0.3);
    assert.deepEqual(DEFAULT_SWEEP_RANGES.years, [3, 6]);
    const catalog = twins(chip('x', 20000, 0.5, 750), chip('y', 22000, 0.5, 750));
    const r = sweepTco({ catalog, devices: ['x', 'y'], points: 2 });
    assert.deepEqual(param(r, 'years').values, [3, 4, 6]);
    assert.deepEqual(param(r, 'price:x').values, [0.7, 1, 1.3]);
    assert.deepEqual(
      r.parameters.map((p) => p.id),
      [
        'price:x',
        'price:y',
        'years',
        'interest',
        'power-price',
        'utilisation',
        'efficiency:x',
        'efficiency:y',
      ],
    );
  });
});

describe('the knobs the sweep turns', () => {
  it('efficiency multiplies spec peaks (not measured ones); a user catalog checks it', () => {
    const [x] = parseCatalog({ replace: true, devices: [{ ...chip('x', 1, 0, 1), efficiency: 0.5 }] });
    assert.equal(x!.efficiency, 0.5);
    const pk = devicePeaks(x!, 'fp16', 'dense')!;
    assert.equal(pk.flopsPerS, 1307e12 * 0.5);
    assert.equal(pk.bytesPerS, 5300e9 * 0.5);
    assert.equal(devicePeaks({ ...x!, measured: { gflops: 100, gbps: 10 } })!.flopsPerS, 100e9);
    for (const efficiency of [0, 1.5, '0.5']) {
      assert.throws(
        () => parseCatalog({ replace: true, devices: [{ ...chip('x', 1, 0, 1), efficiency }] }),
        (e: unknown) =>
          e instanceof CostError && e.code === CostErrorCode.CatalogInvalid && /efficiency/.test(e.message),
      );
    }
  });

  it('utilisation divides the capital $/h and leaves the operating $/h', () => {
    const [x] = parseCatalog({ replace: true, devices: [chip('x', 20000, 0.5, 750)] });
    const full = deviceHourlyCost(x!);
    const half = deviceHourlyCost(x!, { utilisation: 0.5 });
    assert.equal(full.capitalUsdPerHour, capital(20000));
    assert.equal(half.capitalUsdPerHour, capital(20000) / 0.5);
    assert.equal(half.operatingUsdPerHour, 0.5);
    assert.throws(() => deviceHourlyCost(x!, { utilisation: 0 }), CostError);
  });
});
