import { type Catalog, type DeviceClass, PAPER_CATALOG, type PaperFacts } from './catalog.js';
import { CostError, CostErrorCode } from './errors.js';

type Obj = Record<string, unknown>;

function fail(path: string, what: string): never {
  throw new CostError(
    CostErrorCode.CatalogInvalid,
    `${path} must be ${what}; fix the catalog file and retry`,
  );
}

function num(o: Obj, key: string, path: string, fallback?: number): number {
  const v = o[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`${path}.${key}`, 'a non-negative number');
  return v;
}

/** A rate the cost model divides by: a zero makes every time through it Infinity (or NaN for 0 bytes). */
function rate(o: Obj, key: string, path: string, fallback?: number): number {
  const v = num(o, key, path, fallback);
  if (!(v > 0)) fail(`${path}.${key}`, 'a positive number (a rate the cost model divides by)');
  return v;
}

function nullableNum(o: Obj, key: string, path: string, fallback: number | null): number | null {
  if (o[key] === null) return null;
  if (o[key] === undefined) return fallback;
  return num(o, key, path);
}

function paperFacts(v: unknown, path: string): PaperFacts {
  if (typeof v !== 'object' || v === null) fail(path, 'an object');
  const o = v as Obj;
  return {
    priceUsd: num(o, 'price_usd', path),
    memoryGb: num(o, 'memory_gb', path),
    memBwGbps: num(o, 'mem_bw_gbps', path),
    fp16Tflops: num(o, 'fp16_tflops', path),
    opCostUsdPerHour: num(o, 'op_cost_usd_per_hour', path),
  };
}

/** One device entry in the snake_case shape of devices.json; a known id may give only what it changes. */
function parseDevice(v: unknown, path: string, base: DeviceClass | undefined): DeviceClass {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'an object');
  const o = v as Obj;
  if (typeof o.id !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/.test(o.id)) {
    fail(`${path}.id`, 'a lowercase id such as "l40s"');
  }
  const kind = o.kind ?? base?.kind ?? 'accelerator';
  if (kind !== 'accelerator' && kind !== 'cpu') fail(`${path}.kind`, '"accelerator" or "cpu"');
  const paper = o.paper !== undefined ? paperFacts(o.paper, `${path}.paper`) : base?.paper;
  const s = base?.spec;
  const need = (key: string, fb: number | undefined) => num(o, key, path, fb);
  const dev: DeviceClass = {
    id: o.id,
    vendor: typeof o.vendor === 'string' ? o.vendor : (base?.vendor ?? 'unknown'),
    kind,
    spec: {
      priceUsd: need('price_usd', s?.priceUsd ?? paper?.priceUsd),
      memoryGb: need('memory_gb', s?.memoryGb ?? paper?.memoryGb),
      memBwGbps: rate(o, 'mem_bw_gbps', path, s?.memBwGbps ?? paper?.memBwGbps),
      denseFp16Tflops: rate(o, 'dense_bf16_tflops', path, s?.denseFp16Tflops ?? paper?.fp16Tflops),
      fp8Tflops: nullableNum(o, 'fp8_tflops', path, s?.fp8Tflops ?? null),
      opCostUsdPerHour: need('op_cost_usd_per_hour', s?.opCostUsdPerHour ?? paper?.opCostUsdPerHour),
      tdpW: need('tdp_w', s?.tdpW),
    },
    link: {
      scaleUpGBps: rate(o, 'scale_up_gbps', path, base?.link.scaleUpGBps ?? 32),
      scaleOutGBps: rate(o, 'scale_out_gbps', path, base?.link.scaleOutGBps ?? 50),
      maxScaleUp: rate(o, 'max_scale_up', path, base?.link.maxScaleUp ?? (kind === 'cpu' ? 1 : 8)),
    },
    staticLatencyMs: need('static_latency_ms', base?.staticLatencyMs ?? 0.01),
  };
  if (paper) dev.paper = paper;
  const egress =
    o.egress_usd_per_gb === undefined ? base?.link.egressUsdPerGB : num(o, 'egress_usd_per_gb', path);
  if (egress !== undefined) dev.link.egressUsdPerGB = egress;
  const efficiency = o.efficiency ?? base?.efficiency;
  if (efficiency !== undefined) {
    if (typeof efficiency !== 'number' || !(efficiency > 0 && efficiency <= 1)) {
      fail(`${path}.efficiency`, 'a number in (0, 1] (achieved ÷ peak)');
    }
    dev.efficiency = efficiency;
  }
  if (dev.link.maxScaleUp < 1 || !Number.isInteger(dev.link.maxScaleUp)) {
    fail(`${path}.max_scale_up`, 'a positive integer');
  }
  if (dev.spec.memBwGbps === 0 || dev.spec.denseFp16Tflops === 0) {
    fail(path, 'a device with non-zero mem_bw_gbps and dense_bf16_tflops');
  }
  return dev;
}

/**
 * Extends (or with `"replace": true` replaces) a catalog with a user file of the form
 * `{ "devices": [ { "id": "l40s", "memory_gb": 48, ... } ] }`. Field names follow devices.json.
 */
export function parseCatalog(json: unknown, base: Catalog = PAPER_CATALOG): Catalog {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('catalog', 'a JSON object');
  const root = json as Obj;
  if (!Array.isArray(root.devices) || root.devices.length === 0) fail('catalog.devices', 'a non-empty array');
  const replace = root.replace === true;
  const out: DeviceClass[] = replace ? [] : [...base];
  const seen = new Set<string>();
  root.devices.forEach((entry, i) => {
    const path = `catalog.devices[${i}]`;
    const id = (entry as Obj | null)?.id;
    const prior = typeof id === 'string' ? base.find((d) => d.id === id) : undefined;
    const dev = parseDevice(entry, path, prior);
    if (seen.has(dev.id)) fail(`${path}.id`, `unique ("${dev.id}" appears twice)`);
    seen.add(dev.id);
    const at = out.findIndex((d) => d.id === dev.id);
    if (at >= 0) out[at] = dev;
    else out.push(dev);
  });
  return Object.freeze(out);
}
