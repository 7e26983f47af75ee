// The labelled corpus the privacy filter is scored on: generated items (a seeded PRNG, so every run
// scores the same text) and hand-written ones. `[[kind|value]]` marks what must be redacted; the
// rest, hard negatives included, must stay.

export interface Gold {
  kind: string;
  start: number;
  end: number;
}
export interface Item {
  text: string;
  gold: Gold[];
}

/** Strips the `[[kind|value]]` marks, returning the text and the marked spans. */
export function parseMarked(marked: string): Item {
  const gold: Gold[] = [];
  let text = '';
  let at = 0;
  for (const m of marked.matchAll(/\[\[(\w+)\|(.+?)\]\]/g)) {
    text += marked.slice(at, m.index);
    gold.push({ kind: m[1]!, start: text.length, end: text.length + m[2]!.length });
    text += m[2]!;
    at = m.index + m[0].length;
  }
  return { text: text + marked.slice(at), gold };
}

function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const digits = (n: number) => Array.from({ length: n }, () => String(int(0, 9))).join('');
  return { int, pick, digits };
}
type Rng = ReturnType<typeof prng>;

const FIRST = [
  'anna',
  'li',
  'omar',
  'maria',
  'john',
  'sven',
  'chloe',
  'raj',
  'emma',
  'yuki',
  'pablo',
  'ines',
];
const LAST = ['smith', 'nguyen', 'garcia', 'mueller', 'dubois', 'rossi', 'kowalski', 'tanaka', 'okafor'];
const DOMAINS = ['example.com', 'mail.example.org', 'corp.example.co.uk', 'uni-example.de', 'example.io'];

function email(r: Rng): string {
  const f = r.pick(FIRST);
  const l = r.pick(LAST);
  const local = r.pick([
    `${f}.${l}`,
    `${f}_${l}${r.int(1, 99)}`,
    `${f[0]}${l}`,
    `${f}.${l}+${r.pick(['news', 'work'])}`,
  ]);
  return `${local}@${r.pick(DOMAINS)}`;
}

const US_AREAS = ['212', '415', '617', '312', '206', '303', '404', '512', '602', '646', '718', '773', '818'];

function phone(r: Rng): string {
  const exch = () => {
    const e = `${r.int(2, 9)}${r.digits(2)}`;
    return e.endsWith('11') ? `${e[0]}20` : e;
  };
  const a = r.pick(US_AREAS);
  const e = exch();
  const n = r.digits(4);
  const pairs = () => `${r.digits(2)} ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}`;
  return r.pick([
    () => `(${a}) ${e}-${n}`,
    () => `${a}-${e}-${n}`,
    () => `${a}.${e}.${n}`,
    () => `+1 ${a} ${e} ${n}`,
    () => `+1-${a}-${e}-${n}`,
    () => `+1${a}${e}${n}`,
    () => `020 7946 0${r.digits(3)}`,
    () => `+44 20 7946 0${r.digits(3)}`,
    () => `07${r.pick(['400', '700', '912'])} ${r.int(1, 9)}${r.digits(5)}`,
    () => `+44 7${r.pick(['400', '700', '912'])} ${r.int(1, 9)}${r.digits(5)}`,
    () => `06 ${pairs()}`,
    () => `+33 6 ${pairs()}`,
    () => `01 ${pairs()}`,
    () => `030 ${r.int(2, 9)}${r.digits(7)}`,
    () => `+49 30 ${r.int(2, 9)}${r.digits(7)}`,
    () => `+49 151 ${r.int(1, 9)}${r.digits(7)}`,
    () => `+61 412 ${r.digits(3)} ${r.digits(3)}`,
    () => `+34 612 ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}`,
    () => `+39 06 ${r.int(1, 9)}${r.digits(3)} ${r.digits(4)}`,
  ])();
}

/** A Luhn check digit for `body`, computed here independently of the code under test. */
function luhnDigit(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

function cardDigits(r: Rng, valid: boolean): string {
  const [prefix, len] = r.pick([
    ['4', 16],
    [`5${r.int(1, 5)}`, 16],
    [`3${r.pick(['4', '7'])}`, 15],
    ['6011', 16],
  ] as const);
  const body = prefix + r.digits(len - prefix.length - 1);
  const check = luhnDigit(body);
  return body + (valid ? check : (check + r.int(1, 9)) % 10);
}

function formatCard(r: Rng, d: string): string {
  if (d.length === 15) return r.pick([d, `${d.slice(0, 4)} ${d.slice(4, 10)} ${d.slice(10)}`]);
  const sep = r.pick(['', ' ', '-']);
  return (d.match(/.{4}/g) ?? []).join(sep);
}

/** mod-97 check digits of an IBAN (ISO 13616), again independent of the code under test. */
function ibanCheck(country: string, bban: string): string {
  const rearranged = `${bban}${country}00`.replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  let rem = 0;
  for (const ch of rearranged) rem = (rem * 10 + Number(ch)) % 97;
  return String(98 - rem).padStart(2, '0');
}

function iban(r: Rng, valid: boolean): string {
  const letters = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(65 + r.int(0, 25))).join('');
  const [country, bban] = r.pick([
    ['DE', r.digits(18)],
    ['GB', `${r.pick(['WEST', 'NWBK', 'BARC'])}${r.digits(14)}`],
    ['NL', `${letters(4)}${r.digits(10)}`],
    ['AT', r.digits(16)],
    ['CH', `${r.digits(5)}${r.digits(12)}`],
  ] as const);
  const check = ibanCheck(country, bban);
  const digits = valid ? check : String((Number(check) + r.int(1, 90)) % 97).padStart(2, '0');
  const compact = country + digits + bban;
  return r.pick([compact, (compact.match(/.{1,4}/g) ?? []).join(' ')]);
}

/** Things that look like PII to a careless filter and are not. */
function hardNegative(r: Rng): string {
  return r.pick([
    () => `order #${r.int(100000, 9999999)}`,
    () => `Order ${r.int(10000000, 99999999)}`,
    () => `ORD-2024-${r.int(100000, 999999)}`,
    () => `PO ${r.int(4500000000, 4599999999)}`,
    () => `ticket #${r.int(1000000000, 9999999999)}`,
    () =>
      `${r.int(2019, 2026)}-${String(r.int(1, 12)).padStart(2, '0')}-${String(r.int(1, 28)).padStart(2, '0')}`,
    () =>
      `${String(r.int(1, 28)).padStart(2, '0')}/${String(r.int(1, 12)).padStart(2, '0')}/${r.int(2019, 2026)}`,
    () =>
      `${String(r.int(1, 28)).padStart(2, '0')}.${String(r.int(1, 12)).padStart(2, '0')}.${r.int(2019, 2026)}`,
    () => `${r.int(2019, 2026)}-0${r.int(1, 9)}-1${r.int(0, 9)}T${r.int(10, 23)}:${r.int(10, 59)}:00Z`,
    () => `$${r.int(1, 99)},${r.digits(3)}.${r.digits(2)}`,
    () => `€${r.int(1, 9)}.${r.digits(3)},${r.digits(2)}`,
    () => `USD ${r.int(100, 999)},${r.digits(3)}.00`,
    () => `v${r.int(1, 20)}.${r.int(0, 40)}.${r.int(0, 99)}`,
    () => `node ${r.int(18, 24)}.${r.int(0, 20)}.${r.int(0, 9)}`,
    () => `pkg@${r.int(1, 9)}.${r.int(0, 30)}.${r.int(0, 9)}`,
    () => `build ${r.int(2019, 2026)}.${r.int(10, 12)}.${r.int(10, 28)}.${r.int(1, 9)}`,
    () => formatCard(r, cardDigits(r, false)),
    () => iban(r, false),
    () => `192.168.${r.int(0, 255)}.${r.int(1, 254)}`,
    () => `${r.int(10, 23)}:${r.int(10, 59)}`,
    () => `lat ${r.int(10, 60)}.${r.digits(4)}, lon ${r.int(1, 20)}.${r.digits(4)}`,
    () => `1Z${r.digits(3)}AA${r.digits(10)}`,
    () => `ISBN 978-${r.int(0, 9)}-${r.digits(2)}-${r.digits(6)}-${r.int(0, 9)}`,
    () => `${r.int(2, 40)} x ${r.int(2, 500)} units`,
    () => `@${r.pick(FIRST)}_${r.pick(LAST)}`,
    () => `SKU ${r.digits(13)}`,
  ])();
}

const LEADS = ['Hi team,', 'Update:', 'Note from support:', 'Re: your request -', 'FYI', 'Customer wrote:'];
const JOINS = ['please check', 'see also', 'and', 'then', 'noted', 'as discussed', 'next to'];
const TAILS = ['Thanks!', 'Best regards.', '', 'Let me know.', 'Cheers'];
const CUES: Record<string, string[]> = {
  email: ['write to', 'mail', 'email:', 'cc'],
  phone: ['call', 'phone:', 'mobile', 'reach me on', 'tel.'],
  card: ['card', 'paid with', 'card number'],
  iban: ['IBAN', 'transfer to', 'account'],
};

function generated(r: Rng): string {
  const parts: string[] = [r.pick(LEADS)];
  const n = r.int(1, 4);
  for (let i = 0; i < n; i++) {
    if (i > 0) parts.push(r.pick(JOINS));
    if (r.int(0, 9) < 5) {
      const kind = r.pick(['email', 'phone', 'card', 'iban'] as const);
      const value = {
        email,
        phone,
        card: (x: Rng) => formatCard(x, cardDigits(x, true)),
        iban: (x: Rng) => iban(x, true),
      }[kind](r);
      parts.push(`${r.pick(CUES[kind]!)} [[${kind}|${value}]]`);
    } else {
      parts.push(hardNegative(r));
    }
  }
  parts.push(r.pick(TAILS));
  return parts.filter(Boolean).join(' ');
}

export function corpus(generatedCount = 400, seed = 20): Item[] {
  const r = prng(seed);
  const items = Array.from({ length: generatedCount }, () => parseMarked(generated(r)));
  return [...items, ...HAND_WRITTEN.map(parseMarked)];
}

/** Configured patterns the corpus also exercises. */
export const CORPUS_PATTERNS = { employee_id: 'EMP-[0-9]{6}' };

export const HAND_WRITTEN: readonly string[] = [
  'Please call me at [[phone|(415) 555-2671]] after 5pm.',
  'My email is [[email|jane.doe@example.com]], not jane.doe at example dot com.',
  'Order 58213094 shipped on 2024-03-15; total $1,299.99 incl. VAT.',
  'Upgraded to v2.14.3 (was 2.13.9); see release 2024.03.1.',
  'Card [[card|4111 1111 1111 1111]] was declined, 4111 1111 1111 1112 is a typo.',
  'Wire it to [[iban|DE89 3704 0044 0532 0130 00]] by Friday.',
  'The IBAN DE89 3704 0044 0532 0130 01 has a wrong check digit.',
  'UK office: [[phone|+44 20 7946 0958]], Paris: [[phone|+33 1 42 68 53 00]].',
  'Ring [[phone|020 7946 0018]] or mail [[email|desk@corp.example.co.uk]].',
  'Account [[iban|GB82WEST12345698765432]] (compact form).',
  'Meeting at 10:30 on 15.03.2024 in room 4.12.',
  'Invoice INV-2024-118347 for 3 x 250 units, due 30/04/2024.',
  'npm i left-pad@1.3.0 and lodash@4.17.21 then restart.',
  'Tracking 1Z999AA10123456784 via UPS.',
  'Coordinates 48.8566, 2.3522 (Paris).',
  'Server at 10.0.12.7 port 8443, build 20240315.',
  'Mobile [[phone|+49 151 23456789]], office [[phone|030 12345678]].',
  'Reach me on [[phone|06 12 34 56 78]] (France).',
  'Amex [[card|3782 822463 10005]] expires 12/27.',
  'Mastercard [[card|5555-5555-5555-4444]] on file.',
  'Discover [[card|6011111111111117]] used once.',
  'Card-like 1234 5678 9012 3456 is just a reference.',
  'Ref 4000 1234 5678 9010 fails the check digit.',
  'Call [[phone|+1-202-555-0143]] or text [[phone|+12025550187]].',
  'Price dropped from €2.499,00 to €1.999,00.',
  'ISBN 978-3-16-148410-0, 2nd edition, 2019.',
  'SKU 4006381333931 restocked.',
  'Contact: [[email|o.okafor+billing@mail.example.org]] / [[phone|+61 412 345 678]]',
  'Ticket #4815162342 closed; 16 of 23 tests pass.',
  'Employee [[employee_id|EMP-204811]] reported it; EMP-12 is not an id.',
  'HR: [[employee_id|EMP-000123]], [[email|hr@example.com]].',
  'Versions 1.2.3.4 and 10.0.19045 are supported.',
  'Temperature 21.5 C, humidity 45 %, pressure 1013 hPa.',
  'Spanish mobile [[phone|+34 612 34 56 78]], Rome [[phone|+39 06 1234 5678]].',
  'Transfer [[iban|NL91 ABNA 0417 1643 00]] and [[iban|CH93 0076 2011 6238 5295 7]].',
  'NL91 ABNA 0417 1643 01 bounced (checksum).',
  'Austrian account [[iban|AT61 1904 3002 3457 3201]].',
  'Phone numbers in a list: [[phone|(212) 555-0199]], [[phone|(646) 555-0134]]; fax [[phone|212-555-0100]].',
  'The year 2024 had 366 days; 2023-12-31 was a Sunday.',
  'He paid USD 12,500.00 on 03/15/2024 at 14:05.',
  'user@localhost is not a real address and @anna_smith is a handle.',
  'Emails: [[email|a.b@example.io]],[[email|c_d@uni-example.de]].',
  'Dial [[phone|+44 7400 123456]] for the night shift.',
  'GPS 52.5200 N 13.4050 E, elevation 34 m.',
  'Release notes for 3.11.4 and 3.12.0rc1.',
  'Your code is 481516; it expires in 10 minutes.',
  'Patch 2024-03-15.2 fixes CVE-2024-12345.',
  'Pay to [[iban|GB29 NWBK 6016 1331 9268 19]], reference 2024-118347.',
  'Visa [[card|4012888888881881]] and order 4012888888881882.',
  'Phone (fr): [[phone|01 42 68 53 00]]; fax: [[phone|01 42 68 53 01]].',
  'Call [[phone|415.555.2671]] during office hours.',
  'Room 101, floor 3, building 12, postcode 94107.',
  'The file icon_2x.png is 2048 x 1536 pixels.',
  'Serial SN-2024-000981 and batch B7/2291.',
  'Write to [[email|support@example.com]] with your order number 100234.',
  'A 16-digit id 9999 9999 9999 9995 from the test system.',
  'DE00 1234 5678 9012 3456 78 looks like an IBAN but is not.',
  'Score 99.5 %, rank 1 of 1,024, latency 12.7 ms.',
  'Call me: [[phone|+1 (617) 555-1234]].',
  'Numbers 3.14159 and 2.71828 are constants.',
];
