import type { DeviceClass } from './catalog.js';
import { CostError, CostErrorCode } from './errors.js';

export const HOURS_PER_YEAR = 8760;

/**
 * How a device's hourly cost is formed. Defaults are the paper's: 4-year financing at 8 % a year
 * (annual annuity), operating cost = the paper's per-hour figure.
 */
export interface TcoOptions {
  /** @default 4 */
  years?: number;
  /** @default 0.08 */
  annualInterest?: number;
  /** `paper`: Table 5 operating cost per hour; `tdp`: TDP × electricity price. @default 'paper' */
  power?: 'paper' | 'tdp';
  /** @default 0.40 */
  usdPerKwh?: number;
  /**
   * Share (0, 1] of the hours a device does paid work. Capital accrues every hour, the operating
   * cost (power) only while busy, so an hour of work costs capital ÷ utilisation + operating.
   * @default 1
   */
  utilisation?: number;
}

export interface ResolvedTco {
  years: number;
  annualInterest: number;
  power: 'paper' | 'tdp';
  usdPerKwh: number;
  utilisation: number;
}

export function resolveTco(o: TcoOptions = {}): ResolvedTco {
  const r = { years: 4, annualInterest: 0.08, power: 'paper' as const, usdPerKwh: 0.4, utilisation: 1, ...o };
  if (!(r.years > 0)) throw new CostError(CostErrorCode.Input, `options.years must be > 0, got ${r.years}`);
  if (!(r.annualInterest >= 0)) {
    throw new CostError(CostErrorCode.Input, `options.annualInterest must be >= 0, got ${r.annualInterest}`);
  }
  if (!(r.usdPerKwh >= 0)) {
    throw new CostError(CostErrorCode.Input, `options.usdPerKwh must be >= 0, got ${r.usdPerKwh}`);
  }
  if (!(r.utilisation > 0 && r.utilisation <= 1)) {
    throw new CostError(CostErrorCode.Input, `options.utilisation must be in (0, 1], got ${r.utilisation}`);
  }
  return r;
}

/** Yearly payment that repays `principal` over `years` at `rate`: P·i / (1 − (1+i)^−n). */
export function annuity(principal: number, rate: number, years: number): number {
  if (rate === 0) return principal / years;
  return (principal * rate) / (1 - (1 + rate) ** -years);
}

export interface HourlyCost {
  capitalUsdPerHour: number;
  operatingUsdPerHour: number;
  totalUsdPerHour: number;
}

/** $ per busy hour of owning and running one device (per hour when `utilisation` is 1). */
export function deviceHourlyCost(device: DeviceClass, options: TcoOptions = {}): HourlyCost {
  const o = resolveTco(options);
  const price = device.paper?.priceUsd ?? device.spec.priceUsd;
  const capitalUsdPerHour = annuity(price, o.annualInterest, o.years) / HOURS_PER_YEAR / o.utilisation;
  const operatingUsdPerHour =
    o.power === 'tdp'
      ? (device.spec.tdpW / 1000) * o.usdPerKwh
      : (device.paper?.opCostUsdPerHour ?? device.spec.opCostUsdPerHour);
  return { capitalUsdPerHour, operatingUsdPerHour, totalUsdPerHour: capitalUsdPerHour + operatingUsdPerHour };
}

export interface ServingEconomics {
  usdPerRequest: number;
  /** Per million generated (output) tokens. */
  usdPerMTokens: number;
  /** Generated tokens per second bought by one dollar per hour of fleet. */
  tokensPerSecPerUsdHour: number;
}

/** Money per unit of work for a fleet that costs `usdPerHour` and serves `requestsPerS`. */
export function servingEconomics(
  usdPerHour: number,
  requestsPerS: number,
  outputTokens: number,
): ServingEconomics {
  const usdPerRequest = usdPerHour / 3600 / requestsPerS;
  return {
    usdPerRequest,
    usdPerMTokens: (usdPerRequest / outputTokens) * 1e6,
    tokensPerSecPerUsdHour: (requestsPerS * outputTokens) / usdPerHour,
  };
}
