import { createRequire } from 'node:module';
import { electronicFormatIBAN, isValidIBAN } from 'ibantools';
import type { CountryCode, PhoneNumber } from 'libphonenumber-js/max';

type PhoneLib = typeof import('libphonenumber-js/max');
let phoneLib: PhoneLib | undefined;
/**
 * libphonenumber, loaded the first time a filter needs it: its metadata is 93 ES modules, which every
 * process importing this package paid for at start (`stitch node`, `stitch cluster`: 0.04 CPU-s, 0.13
 * under a module hook). Its CommonJS build loads synchronously, so the filter's API stays synchronous.
 */
const phones = (): PhoneLib =>
  (phoneLib ??= createRequire(import.meta.url)('libphonenumber-js/max') as PhoneLib);

/** What the privacy filter finds: a kind and a span of UTF-16 code units, `end` exclusive. */
export interface Finding {
  kind: string;
  start: number;
  end: number;
}

// The local part excludes a leading dot; the top-level label must be letters, so `pkg@1.2.3` is no address.
const EMAIL =
  /(?<![\w.%+-])[A-Za-z0-9_%+-][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/g;

export function findEmails(text: string): Finding[] {
  const out: Finding[] = [];
  for (const m of text.matchAll(EMAIL)) {
    if (m[0].includes('..')) continue;
    out.push({ kind: 'email', start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/** Luhn mod-10 over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

// Issuer prefixes and lengths of the major networks: a random Luhn-valid digit run (one in ten
// passes) must also start and be as long as a card of some network.
const CARD_NETWORKS: [RegExp, number[]][] = [
  [/^4/, [16, 19]], // Visa (13-digit cards are long gone and collide with EAN-13 codes)
  [/^(?:5[1-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720)/, [16]], // Mastercard
  [/^3[47]/, [15]], // Amex
  [/^(?:6011|64[4-9]|65)/, [16, 17, 18, 19]], // Discover
  [/^35(?:2[89]|[3-8])/, [16, 17, 18, 19]], // JCB
  [/^(?:30[0-5]|36|38)/, [14, 15, 16, 17, 18, 19]], // Diners
  [/^62/, [16, 17, 18, 19]], // UnionPay
  [/^(?:50|5[6-8]|6[0-9])/, [16, 17, 18, 19]], // Maestro (the 12-15 digit ones are rare and collide with SKUs)
];
const cardNetwork = (d: string) =>
  CARD_NETWORKS.some(([re, lengths]) => re.test(d) && lengths.includes(d.length));
const CARD_RUN = /(?<![\w.,/-])\d(?:[ -]?\d){12,18}(?![\w]|[.,/-]\d)/g;

/** Card numbers are written as one run, in groups of four (the last shorter), or Amex's 4-6-5. */
function cardGrouping(groups: number[]): boolean {
  if (groups.length === 1) return true;
  const s = groups.join('-');
  if (s === '4-6-5' || s === '4-6-4') return true;
  return groups.slice(0, -1).every((g) => g === 4) && groups.at(-1)! >= 1 && groups.at(-1)! <= 4;
}

export function findCards(text: string): Finding[] {
  const out: Finding[] = [];
  for (const m of text.matchAll(CARD_RUN)) {
    const raw = m[0];
    const seps = new Set(raw.replace(/\d/g, ''));
    if (seps.size > 1) continue;
    const digits = raw.replace(/\D/g, '');
    if (!cardNetwork(digits) || !luhnValid(digits)) continue;
    if (!cardGrouping(raw.split(/[ -]/).map((g) => g.length))) continue;
    out.push({ kind: 'card', start: m.index, end: m.index + raw.length });
  }
  return out;
}

// Country code, check digits, then the BBAN in groups of four separated by single spaces or not at all.
const IBAN_START = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){8,30}/g;

/** Spans shaped like an IBAN, valid or not: a digit group inside one is no phone number. */
export function ibanShapes(text: string): Finding[] {
  return [...text.matchAll(IBAN_START)].map((m) => ({
    kind: 'iban-shape',
    start: m.index,
    end: m.index + m[0].length,
  }));
}

/**
 * IBANs whose country length, BBAN format and mod-97 check digits hold (ibantools). A match may run
 * into the next word, so the candidate is cut back character by character to the longest valid IBAN.
 */
export function findIbans(text: string): Finding[] {
  const out: Finding[] = [];
  const re = new RegExp(IBAN_START);
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const from = m.index;
    // A candidate with no valid IBAN may still have one starting inside it.
    re.lastIndex = from + 1;
    for (let raw = m[0]; raw.length >= 15; raw = raw.slice(0, -1)) {
      const after = text.charAt(from + raw.length);
      if (/[A-Za-z0-9]/.test(after) || raw.endsWith(' ')) continue;
      if (isValidIBAN(electronicFormatIBAN(raw) ?? '')) {
        out.push({ kind: 'iban', start: from, end: from + raw.length });
        re.lastIndex = from + raw.length;
        break;
      }
    }
  }
  return out;
}

const PHONE_CONTEXT =
  /(?:phone|tel|call|mobile|cell|fax|ring|text me|whatsapp|sms|contact|reach me|dial)\W{0,12}$/i;
// A number glued to a word, a `#`, or more digits is part of something longer (a card-like run, a
// tracking code, an amount), not a phone number.
const PART_OF_MORE = /(?:[A-Za-z0-9#]|\d[ .,/-])$/;
const MORE_AFTER = /^(?:[A-Za-z0-9]|[.,/-]\d)/;
const digitGroups = (s: string): string => (s.match(/\d+/g) ?? []).map((g) => g.length).join(',');

/** Regions whose national forms are looked for when none are configured. */
export const DEFAULT_PHONE_REGIONS: readonly CountryCode[] = ['US', 'GB', 'FR', 'DE'];

export function checkPhoneRegions(regions: string[]): CountryCode[] {
  const { isSupportedCountry } = phones();
  const bad = regions.filter((r) => !isSupportedCountry(r));
  if (bad.length > 0)
    throw new TypeError(`unknown phone region(s) ${bad.join(', ')}: use ISO 3166 codes like US, GB`);
  return regions as CountryCode[];
}

/**
 * Phone numbers by libphonenumber. A number written with `+` or an international prefix counts when
 * its length is possible for the country; a national one (`020 7946 0958`) only when it is valid and written the way its numbering
 * plan groups it, as a trunk-prefixed number in space-separated groups, or after a word like "call" —
 * so order numbers, dates and amounts that happen to be valid numbers somewhere are not taken.
 */
// A phone number is a run of digits and separators; libphonenumber sees only the start of each run
// with enough digits (a number further into a run is part of something longer, see PART_OF_MORE),
// which keeps prose and digit-dense text cheap and splits lists of numbers apart.
const RUN = /[+(]?\d[\d ()./-]*\d\)?/g;
const RUN_WINDOW = 40;
const MIN_DIGITS = 6;

/**
 * Phone numbers, one array per digit run that libphonenumber looked at (empty when it found none), so
 * a caller can pause between runs: digit-heavy text without a phone is the slow case.
 */
export function* phonesByRun(text: string, regions: readonly CountryCode[]): Generator<Finding[]> {
  const { findNumbers } = phones();
  for (const run of text.matchAll(RUN)) {
    const window = run[0].slice(0, RUN_WINDOW);
    if (window.replace(/\D/g, '').length < MIN_DIGITS) continue;
    const found = new Map<string, Finding>();
    for (const region of regions) {
      // 'POSSIBLE' (untyped, but read by the matcher) returns numbers in unallocated ranges too; isPhone decides.
      const options = { defaultCountry: region, v2: true as const, leniency: 'POSSIBLE' };
      for (const f of findNumbers(window, options)) {
        const start = run.index + f.startsAt;
        const end = run.index + f.endsAt;
        const key = `${start}:${end}`;
        if (!found.has(key) && isPhone(text, start, end, f.number))
          found.set(key, { kind: 'phone', start, end });
      }
    }
    yield [...found.values()];
  }
}

function isPhone(text: string, start: number, end: number, number: PhoneNumber): boolean {
  if (
    PART_OF_MORE.test(text.slice(Math.max(0, start - 2), start)) ||
    MORE_AFTER.test(text.slice(end, end + 2))
  )
    return false;
  const raw = text.slice(start, end);
  const groups = digitGroups(raw);
  // Bare `00…` runs are SKUs and barcodes more often than dialled numbers.
  const international = raw.startsWith('+') || (raw.startsWith('00') && groups.includes(','));
  // An explicit country code is strong evidence: a number of a possible length counts even in a
  // range the metadata does not list as allocated yet.
  if (international) return number.isPossible();
  // Cheap shape checks first: validation and formatting walk the metadata's expressions.
  const trunk = /^\(?0\d*\)?(?: \d+)+$/.test(raw);
  const context = PHONE_CONTEXT.test(text.slice(Math.max(0, start - 40), start));
  if (!trunk && !context && !groups.includes(',')) return false;
  if (!number.isValid()) return false;
  return trunk || context || groups === digitGroups(number.formatNational());
}
