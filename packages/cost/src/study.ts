import { kvBytesPerToken, weightBytes } from '@stitch/models';
import {
  type Catalog,
  type Dtype,
  devicePeaks,
  findDevice,
  PAPER_CATALOG,
  PAPER_DEVICE_IDS,
  type PeakBasis,
} from './catalog.js';
import { bytesPerParam, findModel, type LlmSetting } from './llm.js';
import { type InstanceChoice, type Shape, sizeDecode, sizePrefill } from './serving.js';
import { deviceHourlyCost, type ResolvedTco, resolveTco, servingEconomics, type TcoOptions } from './tco.js';

export interface Scenario {
  model: 'llama3-8b' | 'llama3-70b';
  dtype: Dtype;
  shape: Shape;
  mode: 'interactive' | 'offline';
}

export interface PairResult {
  prefill: string;
  decode: string;
  feasible: boolean;
  reason?: string;
  prefillChoice?: InstanceChoice;
  decodeChoice?: InstanceChoice;
  usdPerRequest?: number;
  usdPerMTokens?: number;
  tokensPerSecPerUsdHour?: number;
  /** Prefill instances per decode instance in a balanced fleet. */
  prefillPerDecode?: number;
  /** Decode step plus the KV transfer the second token waits for. */
  secondTokenMs?: number;
  /** This pair's cost per request ÷ H100::H100's (below 1 is cheaper); absent when either is infeasible. */
  relativeTco?: number;
}

export interface ScenarioResult {
  scenario: Scenario;
  pairs: PairResult[];
}

export interface StudyOptions {
  basis?: PeakBasis;
  tco?: TcoOptions;
  catalog?: Catalog;
  devices?: readonly string[];
  /** @default { ttftMs: 250, tbtMs: 20 } */
  sla?: { ttftMs: number; tbtMs: number };
}

export interface StudyResult {
  assumptions: string[];
  tco: ResolvedTco;
  basis: PeakBasis;
  scenarios: ScenarioResult[];
}

export const STUDY_SCENARIOS: readonly Scenario[] = (() => {
  const out: Scenario[] = [];
  for (const model of ['llama3-8b', 'llama3-70b'] as const) {
    for (const dtype of ['fp16', 'fp8'] as const) {
      for (const shape of [
        { inputLen: 512, outputLen: 4096 },
        { inputLen: 4096, outputLen: 512 },
      ]) {
        for (const mode of ['interactive', 'offline'] as const) out.push({ model, dtype, shape, mode });
      }
    }
  }
  return out;
})();

export const scenarioLabel = (s: Scenario): string =>
  `${s.model} ${s.dtype} ${s.shape.inputLen}/${s.shape.outputLen} ${s.mode}`;

/** Every prefill::decode pair of the catalog over the paper's 16 scenarios. */
export function runTcoStudy(o: StudyOptions = {}): StudyResult {
  const catalog = o.catalog ?? PAPER_CATALOG;
  const ids = o.devices ?? PAPER_DEVICE_IDS;
  const basis = o.basis ?? 'paper';
  const tco = resolveTco(o.tco);
  const sla = o.sla ?? { ttftMs: 250, tbtMs: 20 };
  const scenarios = STUDY_SCENARIOS.map((scenario) => {
    const model = findModel(scenario.model);
    const interactive = scenario.mode === 'interactive';
    const sized = ids.map((id) => {
      const device = findDevice(catalog, id);
      const hourly = deviceHourlyCost(device, tco).totalUsdPerHour;
      if (!devicePeaks(device, scenario.dtype, basis)) {
        const r = { choice: null, reason: `${id} has no ${scenario.dtype}` };
        return { id, p: r, d: r };
      }
      const s: LlmSetting = { model, dtype: scenario.dtype, basis, device };
      const p = sizePrefill(s, scenario.shape, hourly, interactive ? sla.ttftMs : undefined);
      const d = sizeDecode(s, scenario.shape, hourly, interactive ? sla.tbtMs : undefined);
      return { id, p, d };
    });
    const pairs: PairResult[] = [];
    for (const a of sized) {
      for (const b of sized) pairs.push(combine(a.id, a.p, b.id, b.d, scenario.shape.outputLen));
    }
    const ref = pairs.find((x) => x.prefill === 'h100' && x.decode === 'h100');
    for (const x of pairs) {
      if (x.usdPerRequest !== undefined && ref?.usdPerRequest !== undefined) {
        x.relativeTco = x.usdPerRequest / ref.usdPerRequest;
      }
    }
    return { scenario, pairs };
  });
  return { assumptions: studyAssumptions(catalog, ids, basis, tco, sla), tco, basis, scenarios };
}

function combine(
  pid: string,
  p: { choice: InstanceChoice | null; reason?: string },
  did: string,
  d: { choice: InstanceChoice | null; reason?: string },
  outputLen: number,
): PairResult {
  if (!p.choice || !d.choice) {
    return { prefill: pid, decode: did, feasible: false, reason: p.reason ?? d.reason ?? 'infeasible' };
  }
  // A balanced fleet runs prefill and decode instances in the ratio of their request rates, so
  // the cost of a request is the sum of both sides' cost per request.
  const usdPerRequest = p.choice.usdPerRequest + d.choice.usdPerRequest;
  const econ = servingEconomics(usdPerRequest * 3600, 1, outputLen);
  return {
    prefill: pid,
    decode: did,
    feasible: true,
    prefillChoice: p.choice,
    decodeChoice: d.choice,
    usdPerRequest,
    usdPerMTokens: econ.usdPerMTokens,
    tokensPerSecPerUsdHour: econ.tokensPerSecPerUsdHour,
    prefillPerDecode: d.choice.requestsPerS / p.choice.requestsPerS,
    secondTokenMs: d.choice.latencyMs + d.choice.kvTransferMs,
  };
}

function studyAssumptions(
  catalog: Catalog,
  ids: readonly string[],
  basis: PeakBasis,
  tco: ResolvedTco,
  sla: { ttftMs: number; tbtMs: number },
): string[] {
  const lines = [
    `hourly $ = price · i/(1−(1+i)^−n) / 8760 / u + operating; i = ${tco.annualInterest}, n = ${tco.years} years (annual annuity), utilisation u = ${tco.utilisation}`,
    tco.power === 'paper'
      ? 'operating $/h = Table 5 op cost per hour'
      : `operating $/h = TDP kW × $${tco.usdPerKwh}/kWh`,
    `peaks: ${basis === 'paper' ? 'Table 5 FP16 TFLOPS, memory, bandwidth' : 'vendor dense FP16/BF16 TFLOPS'}; FP8 = vendor dense FP8 TFLOPS (none on a40, a100-80g); × efficiency (achieved ÷ peak, 1 unless a device sets it)`,
    'time = max(FLOPs / (tp · peak), bytes / (tp · BW)) + 2 ring all-reduces per layer over scale-up + 10 µs static',
    'ring all-reduce = 2(p−1)/p · bytes / link + 2(p−1) · 5 µs; tp ∈ {1,2,4,8} (divides kv heads), pp ∈ {1,2,4} chassis',
    'prefill FLOPs = 2·params·L + 2·layers·L²·d_model; bytes = weights + KV written',
    'decode FLOPs/token = 2·params + 4·layers·ctx·d_model; bytes = weights + batch·ctx·KV/token; ctx = in + out/2',
    'memory: weights + batch·seq·KV/token ≤ 0.9 · device memory · devices; decode holds in + out tokens',
    `KV/token = 2·layers·d_model·kv_heads/heads·bytes; NIC 50 GB/s (400 Gbps) per device`,
    `interactive: prefill batch ≤ TTFT ${sla.ttftMs} ms incl. KV egress; decode step ≤ TBT ${sla.tbtMs} ms and one request's KV ingress ≤ TBT`,
    'offline: largest batch memory holds; request rate capped by KV link bandwidth',
    '$ per request = Σ over prefill, decode of instance $/h / 3600 / instance requests per s (balanced fleet)',
    'relative TCO = $ per request ÷ H100::H100 $ per request',
  ];
  for (const id of ids) {
    const d = findDevice(catalog, id);
    const h = deviceHourlyCost(d, tco);
    const pk = devicePeaks(d, 'fp16', basis)!;
    const p8 = devicePeaks(d, 'fp8', basis);
    lines.push(
      `${id}: $${h.totalUsdPerHour.toFixed(4)}/h (capital ${h.capitalUsdPerHour.toFixed(4)} + op ${h.operatingUsdPerHour.toFixed(4)}); ` +
        `fp16 ${pk.flopsPerS / 1e12} TFLOPS, fp8 ${p8 ? p8.flopsPerS / 1e12 : '—'} TFLOPS, ${pk.bytesPerS / 1e9} GB/s, ` +
        `${pk.memoryBytes / 1e9} GB, scale-up ${d.link.scaleUpGBps} GB/s${d.efficiency === undefined ? '' : `, efficiency ${d.efficiency}`}`,
    );
  }
  for (const m of ['llama3-8b', 'llama3-70b']) {
    const model = findModel(m);
    const fp16 = bytesPerParam('fp16');
    lines.push(
      `${m}: ${model.params} params, ${model.layers} layers, d_model ${model.dModel}, heads ${model.nHeads}/${model.nKvHeads} kv; ` +
        `fp16 weights ${(weightBytes(model, fp16) / 1e9).toFixed(2)} GB, KV ${kvBytesPerToken(model, fp16)} B/token`,
    );
  }
  return lines;
}
