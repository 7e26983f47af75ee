import { setImmediate } from 'node:timers/promises';
import { RE2JS } from 're2js';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { perConfig } from './memo.js';
import {
  checkPhoneRegions,
  DEFAULT_PHONE_REGIONS,
  type Finding,
  findCards,
  findEmails,
  findIbans,
  ibanShapes,
  phonesByRun,
} from './pii.js';

export type { Finding } from './pii.js';

/** Characters one call may filter; longer input is refused, never cut (a cut could let PII through). */
export const MAX_FILTER_CHARS = 64 * 1024;
/** Configured patterns per filter and characters per pattern. */
export const MAX_PATTERNS = 16;
export const MAX_PATTERN_CHARS = 256;
const PATTERN_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const BUILT_IN = new Set(['email', 'phone', 'card', 'iban']);
/** Longest stretch `findYielding` runs without giving the event loop a turn. */
const SLICE_MS = 5;

export interface PrivacyOptions {
  /** ISO 3166 regions whose national phone forms are recognised. @default US, GB, FR, DE */
  phoneRegions?: readonly string[];
  /** Extra kinds: name → RE2 syntax (linear-time engine, so no pattern can backtrack catastrophically). */
  patterns?: Readonly<Record<string, string>>;
}

export interface Redacted {
  text: string;
  /** What was replaced, in the input's coordinates; the values themselves are not kept. */
  redactions: Finding[];
}

// Where two findings overlap, the one of the earlier kind wins (an IBAN holds digit runs a phone
// finder would also take), then the longer one.
const RANK: Record<string, number> = { iban: 0, card: 1, email: 2, phone: 4 };
const rank = (kind: string) => RANK[kind] ?? 3;

function invalid(message: string): never {
  throw new AgentsError(AgentsErrorCode.PrivacyConfigInvalid, message);
}

/**
 * Redacts e-mail addresses, phone numbers, Luhn-valid card numbers, checksum-valid IBANs and
 * configured patterns, replacing each with `[KIND]`.
 */
export class PrivacyFilter {
  readonly #regions;
  readonly #patterns: { kind: string; re: RE2JS }[] = [];

  constructor(options: PrivacyOptions = {}) {
    try {
      this.#regions = checkPhoneRegions([...(options.phoneRegions ?? DEFAULT_PHONE_REGIONS)]);
    } catch (e) {
      invalid((e as Error).message);
    }
    const entries = Object.entries(options.patterns ?? {});
    if (entries.length > MAX_PATTERNS)
      invalid(`${entries.length} patterns configured; at most ${MAX_PATTERNS}`);
    for (const [kind, source] of entries) {
      if (!PATTERN_NAME.test(kind) || BUILT_IN.has(kind))
        invalid(`pattern name "${kind.slice(0, 40)}" must be 1-32 of a-z, 0-9, _ and not a built-in kind`);
      if (typeof source !== 'string' || source.length === 0 || source.length > MAX_PATTERN_CHARS)
        invalid(`pattern ${kind} must be 1 to ${MAX_PATTERN_CHARS} characters of RE2 syntax`);
      try {
        this.#patterns.push({ kind, re: RE2JS.compile(source) });
      } catch (e) {
        invalid(
          `pattern ${kind} is not valid RE2 syntax (no backreferences or lookaround): ${(e as Error).message}`,
        );
      }
    }
  }

  /** Every finding in `text`, overlaps resolved, in text order. */
  find(text: string): Finding[] {
    this.#check(text);
    return this.#resolve(text, [...phonesByRun(text, this.#regions)].flat());
  }

  /** `find` that gives the event loop a turn every few ms (phone validation is the slow part). */
  async findYielding(text: string): Promise<Finding[]> {
    this.#check(text);
    const phones: Finding[] = [];
    let since = performance.now();
    for (const run of phonesByRun(text, this.#regions)) {
      phones.push(...run);
      if (performance.now() - since > SLICE_MS) {
        await setImmediate();
        since = performance.now();
      }
    }
    return this.#resolve(text, phones);
  }

  #check(text: string): void {
    if (text.length > MAX_FILTER_CHARS) {
      throw new AgentsError(
        AgentsErrorCode.InputTooLarge,
        `text of ${text.length} characters is longer than the privacy filter takes (${MAX_FILTER_CHARS}); split it first`,
      );
    }
  }

  #resolve(text: string, phones: Finding[]): Finding[] {
    const shaped = new Uint8Array(text.length);
    for (const s of ibanShapes(text)) shaped.fill(1, s.start, s.end);
    // Digit groups inside an IBAN-shaped string (a mistyped IBAN) are neither cards nor phones.
    const loose = [...findCards(text), ...phones].filter((f) => shaped[f.start] === 0);
    const all = [...findIbans(text), ...findEmails(text), ...loose];
    for (const { kind, re } of this.#patterns) {
      const m = re.matcher(text);
      while (m.find()) if (m.end() > m.start()) all.push({ kind, start: m.start(), end: m.end() });
    }
    all.sort(
      (a, b) => rank(a.kind) - rank(b.kind) || b.end - b.start - (a.end - a.start) || a.start - b.start,
    );
    // Each kind's own findings do not overlap, so marking costs at most (kinds × length) in all.
    const taken = new Uint8Array(text.length);
    const kept: Finding[] = [];
    for (const f of all) {
      if (taken.subarray(f.start, f.end).includes(1)) continue;
      taken.fill(1, f.start, f.end);
      kept.push(f);
    }
    return kept.sort((a, b) => a.start - b.start);
  }

  redact(text: string): Redacted {
    return replace(text, this.find(text));
  }

  async redactYielding(text: string): Promise<Redacted> {
    return replace(text, await this.findYielding(text));
  }
}

function replace(text: string, redactions: Finding[]): Redacted {
  let out = '';
  let at = 0;
  for (const f of redactions) {
    out += `${text.slice(at, f.start)}[${f.kind.toUpperCase()}]`;
    at = f.end;
  }
  return { text: out + text.slice(at), redactions };
}

/** Attrs of a `text.privacy_filter` op: `phone_regions` ("US,GB") and `pattern.<name>` entries. */
export function privacyOptionsFromAttrs(attrs: Record<string, string | number | boolean>): PrivacyOptions {
  const patterns: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (k.startsWith('pattern.')) patterns[k.slice(8)] = String(v);
  const regions = attrs.phone_regions;
  return {
    patterns,
    ...(typeof regions === 'string' ? { phoneRegions: regions.split(',').map((r) => r.trim()) } : {}),
  };
}

/** The filter of an op's config, built (and its attrs checked) once per config object. */
export const privacyFilterFor = perConfig(
  (cfg: { attrs: Record<string, string | number | boolean> }) =>
    new PrivacyFilter(privacyOptionsFromAttrs(cfg.attrs)),
);

/**
 * Redacts every top-level string field of a request's context, so no unredacted copy flows on to
 * later ops, and lists the redactions per field.
 */
export async function redactContext(
  filter: PrivacyFilter,
  ctx: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const redactions: Record<string, Finding[]> = {};
  for (const [k, v] of Object.entries(ctx)) {
    if (typeof v !== 'string') continue;
    const r = await filter.redactYielding(v);
    out[k] = r.text;
    if (r.redactions.length > 0) redactions[k] = r.redactions;
  }
  return { ...out, redactions };
}
