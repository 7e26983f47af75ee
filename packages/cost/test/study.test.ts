import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findDevice, findModel, PAPER_CATALOG, runTcoStudy, scenarioLabel } from '../src/index.js';
import { decodeStepTime, maxBatchInMemory } from '../src/internal.js';

const study = runTcoStudy();
const scenario = (label: string) => {
  const s = study.scenarios.find((x) => scenarioLabel(x.scenario) === label);
  assert.ok(s, `scenario ${label}`);
  return s;
};

describe('TCO study', () => {
  it('covers 36 pairs × 16 scenarios and is relative to H100::H100', () => {
    assert.equal(study.scenarios.length, 16);
    for (const s of study.scenarios) {
      assert.equal(s.pairs.length, 36);
      const ref = s.pairs.find((p) => p.prefill === 'h100' && p.decode === 'h100')!;
      assert.equal(ref.relativeTco, 1);
    }
  });

  it('has no FP8 result for devices without FP8', () => {
    for (const p of scenario('llama3-70b fp8 512/4096 offline').pairs) {
      if (p.prefill === 'a40' || p.decode === 'a100-80g') assert.equal(p.feasible, false);
    }
  });

  it('recomputes one cell from first principles and the printed assumptions', () => {
    // Llama 3 8B FP16, 4096 in / 512 out, interactive, on B200 prefill and Gaudi 3 decode.
    const cell = scenario('llama3-8b fp16 4096/512 interactive').pairs.find(
      (p) => p.prefill === 'b200' && p.decode === 'gaudi3',
    )!;
    const P = cell.prefillChoice!;
    const D = cell.decodeChoice!;
    const L = 32;
    const d = 4096;
    const params = 8.03e9;
    const kvPerToken = 2 * L * d * (8 / 32) * 2;
    const hourly = (price: number, op: number) => (price * 0.08) / (1 - 1.08 ** -4) / 8760 + op;
    const ring = (bytes: number, p: number, link: number) =>
      p > 1 ? ((2 * (p - 1)) / p) * (bytes / (link * 1e9)) * 1e3 + (2 * (p - 1) * 5) / 1e3 : 0;

    // Prefill on B200 (2250 TFLOPS, 8000 GB/s, 900 GB/s scale-up).
    const pFlops = P.batch * (2 * params * 4096 + 2 * L * 4096 * 4096 * d);
    const pBytes = params * 2 + P.batch * 4096 * kvPerToken;
    const pSync = ring(P.batch * 4096 * d * 2, P.tp, 900) * 2 * L;
    const ttft = Math.max(pFlops / (2250e12 * P.tp), pBytes / (8000e9 * P.tp)) * 1e3 + pSync + 0.01;
    assert.ok(Math.abs(ttft - P.latencyMs) < 1e-9, `ttft ${ttft} vs ${P.latencyMs}`);
    assert.ok(ttft <= 250);
    const pRate = (P.pp * P.batch) / (ttft / 1e3);

    // Decode on Gaudi 3 (1678 TFLOPS, 3700 GB/s, 262.5 GB/s scale-up) at mean context 4096 + 256.
    const ctx = 4096 + 256;
    const dFlops = D.batch * (2 * params + 4 * L * ctx * d);
    const dBytes = params * 2 + D.batch * ctx * kvPerToken;
    const dSync = ring(D.batch * d * 2, D.tp, 262.5) * 2 * L;
    const tbt = Math.max(dFlops / (1678e12 * D.tp), dBytes / (3700e9 * D.tp)) * 1e3 + dSync + 0.01;
    assert.ok(Math.abs(tbt - D.latencyMs) < 1e-9, `tbt ${tbt} vs ${D.latencyMs}`);
    assert.ok(tbt <= 20);
    const dRate = (D.pp * D.batch) / ((512 * tbt) / 1e3);

    const usd =
      (P.devices * hourly(40000, 0.83)) / 3600 / Math.min(pRate, (P.devices * 50e9) / (4096 * kvPerToken)) +
      (D.devices * hourly(12500, 0.49)) / 3600 / Math.min(dRate, (D.devices * 50e9) / (4096 * kvPerToken));
    assert.ok(Math.abs(usd - cell.usdPerRequest!) / usd < 1e-12, `usd ${usd} vs ${cell.usdPerRequest}`);
    assert.ok(Math.abs(cell.usdPerMTokens! - (usd / 512) * 1e6) < 1e-9);
  });

  it('chooses batches at the edge of a constraint (one more breaks the SLA or memory)', () => {
    const cell = scenario('llama3-70b fp16 512/4096 interactive').pairs.find(
      (p) => p.prefill === 'h100' && p.decode === 'h100',
    )!;
    const D = cell.decodeChoice!;
    assert.ok(D.latencyMs <= 20);
    const s = {
      model: findModel('llama3-70b'),
      dtype: 'fp16' as const,
      basis: 'paper' as const,
      device: findDevice(PAPER_CATALOG, 'h100'),
    };
    const par = { tp: D.tp, pp: D.pp };
    const tooSlow = decodeStepTime(s, par, D.batch + 1, 512 + 2048).ms > 20;
    const tooBig = D.batch + 1 > maxBatchInMemory(s, par, 512 + 4096);
    assert.ok(tooSlow || tooBig, `batch ${D.batch + 1} would still fit`);
  });

  it('dense peaks change compute-bound cells only through the FLOP rate', () => {
    const dense = runTcoStudy({ basis: 'dense' });
    const h100 = findDevice(PAPER_CATALOG, 'h100');
    assert.equal(h100.spec.denseFp16Tflops, 989);
    const label = 'llama3-8b fp16 4096/512 offline';
    const a = scenario(label).pairs.find((p) => p.prefill === 'h100' && p.decode === 'h100')!;
    const b = dense.scenarios
      .find((x) => scenarioLabel(x.scenario) === label)!
      .pairs.find((p) => p.prefill === 'h100' && p.decode === 'h100')!;
    // Offline prefill is compute bound, so halving H100's peak costs more per request.
    assert.ok(b.prefillChoice!.usdPerRequest > a.prefillChoice!.usdPerRequest);
  });

  it('prints assumptions that name every number used', () => {
    const text = study.assumptions.join('\n');
    for (const needle of ['i = 0.08', 'n = 4', '50 GB/s', 'TTFT 250', 'TBT 20', 'h100: $', 'llama3-70b']) {
      assert.ok(text.includes(needle), needle);
    }
  });
});
