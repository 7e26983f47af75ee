import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { type Cluster, connectCluster } from '@stitch/runtime';
import {
  MAX_FILTER_CHARS,
  MAX_PATTERN_CHARS,
  OPERATOR_ACTORS,
  type OpReply,
  PrivacyFilter,
} from '../src/index.js';
import { phonesByRun } from '../src/pii.js';
import { CORPUS_PATTERNS, corpus, type Gold, parseMarked } from './privacy-corpus.js';

const key = (g: Gold) => `${g.kind}:${g.start}:${g.end}`;

// First in this file: no filter has been made yet. What it loads on demand is the CommonJS build, so
// require's cache shows whether it is loaded (an ES import would never appear there).
test('libphonenumber is loaded by the first filter, not by importing the package', () => {
  const loaded = () =>
    Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('libphonenumber-js'));
  assert.equal(loaded(), false, 'importing @stitch/agents loaded libphonenumber');
  assert.deepEqual(
    new PrivacyFilter().find('call 020 7946 0958 today').map((f) => f.kind),
    ['phone'],
  );
  assert.equal(loaded(), true, 'the first filter loaded libphonenumber (its CommonJS build, on demand)');
});

test('precision and recall on the labelled corpus are at least 0.99', (t) => {
  const filter = new PrivacyFilter({ patterns: CORPUS_PATTERNS });
  const items = corpus();
  assert.ok(items.length >= 400);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  const misses: string[] = [];
  for (const item of items) {
    const gold = new Set(item.gold.map(key));
    const found = new Set(filter.find(item.text).map(key));
    for (const k of found)
      if (gold.has(k)) tp++;
      else {
        fp++;
        misses.push(`FP ${k} in ${item.text}`);
      }
    for (const k of gold)
      if (!found.has(k)) {
        fn++;
        misses.push(`FN ${k} in ${item.text}`);
      }
  }
  const precision = tp / (tp + fp);
  const recall = tp / (tp + fn);
  t.diagnostic(
    `items ${items.length}, entities ${tp + fn}, precision ${precision.toFixed(4)}, recall ${recall.toFixed(4)}`,
  );
  assert.ok(tp + fn >= 300, 'the corpus has enough entities to measure 0.99');
  assert.ok(precision >= 0.99, `precision ${precision}\n${misses.join('\n')}`);
  assert.ok(recall >= 0.99, `recall ${recall}\n${misses.join('\n')}`);
});

test('the corpus holds hard negatives of every family the filter must leave alone', () => {
  const text = corpus()
    .map((i) => i.text)
    .join('\n');
  for (const re of [
    /Order \d{8}/,
    /\d{4}-\d\d-\d\d/,
    /\$\d+,\d{3}\.\d\d/,
    /v\d+\.\d+\.\d+/,
    /ticket #\d{10}/,
  ])
    assert.match(text, re);
});

test('redact replaces each finding with its kind and reports spans, not values', () => {
  const f = new PrivacyFilter();
  const r = f.redact('Mail ann@example.com or call +44 20 7946 0958; card 4111-1111-1111-1111.');
  assert.equal(r.text, 'Mail [EMAIL] or call [PHONE]; card [CARD].');
  assert.deepEqual(
    r.redactions.map((x) => x.kind),
    ['email', 'phone', 'card'],
  );
  assert.deepEqual(r.redactions[0], { kind: 'email', start: 5, end: 20 });
  assert.equal(JSON.stringify(r.redactions).includes('ann@'), false);
});

test('checksums decide: a Luhn or mod-97 failure is left in place', () => {
  const f = new PrivacyFilter();
  assert.deepEqual(f.find('4111 1111 1111 1112 and DE89 3704 0044 0532 0130 01'), []);
  const { text, gold } = parseMarked('[[card|4111 1111 1111 1111]] and [[iban|DE89 3704 0044 0532 0130 00]]');
  assert.deepEqual(f.find(text), gold);
});

test('phone regions decide which national forms count', () => {
  const text = 'ring 06 12 34 56 78 today';
  assert.equal(new PrivacyFilter({ phoneRegions: ['FR'] }).find(text).length, 1);
  assert.equal(new PrivacyFilter({ phoneRegions: ['US'] }).find(text).length, 0);
  assert.throws(
    () => new PrivacyFilter({ phoneRegions: ['XX'] }),
    (e: { code?: string }) => e.code === 'PRIVACY_CONFIG_INVALID',
  );
});

test('configured patterns: RE2 syntax, bounded, named; offsets are UTF-16 like the rest', () => {
  const f = new PrivacyFilter({ patterns: { ticket: 'TCK-[0-9]{4}' } });
  const r = f.redact('ünïcödé TCK-1234 ✓ TCK-99');
  assert.equal(r.text, 'ünïcödé [TICKET] ✓ TCK-99');
  assert.deepEqual(r.redactions, [{ kind: 'ticket', start: 8, end: 16 }]);
  const invalid = (e: { code?: string }) => e.code === 'PRIVACY_CONFIG_INVALID';
  assert.throws(() => new PrivacyFilter({ patterns: { back: '(a)\\1' } }), invalid);
  assert.throws(() => new PrivacyFilter({ patterns: { look: '(?=a)b' } }), invalid);
  assert.throws(() => new PrivacyFilter({ patterns: { long: 'a'.repeat(MAX_PATTERN_CHARS + 1) } }), invalid);
  assert.throws(() => new PrivacyFilter({ patterns: { email: 'x' } }), invalid);
  assert.throws(() => new PrivacyFilter({ patterns: { 'Bad Name': 'x' } }), invalid);
  const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, 'x']));
  assert.throws(() => new PrivacyFilter({ patterns: many }), invalid);
});

test('a pattern that backtracks catastrophically in a backtracking engine runs in linear time here', () => {
  // (a+)+$ against a run of a's and one b takes 2^n steps in V8's engine; RE2 scans it once.
  const f = new PrivacyFilter({ patterns: { evil: '(a+)+$' } });
  const text = `${'a'.repeat(MAX_FILTER_CHARS - 1)}b`;
  assert.deepEqual(f.find(text), []);
  const empty = new PrivacyFilter({ patterns: { maybe: 'z*' } });
  assert.deepEqual(empty.find('abc'), []);
});

test('input over the limit is refused whole, never cut', () => {
  assert.throws(
    () => new PrivacyFilter().find('x'.repeat(MAX_FILTER_CHARS + 1)),
    (e: { code?: string }) => e.code === 'INPUT_TOO_LARGE',
  );
});

test('the yielding variant, which the operator uses, finds the same as find', async () => {
  const f = new PrivacyFilter();
  const lines = corpus(100, 7).map((i) => i.text);
  // Many digit runs and e-mail-like fragments up to the limit: the slow case for phone validation.
  const dense = `${lines.join('\n')} ${'a@b 12345678; (415) 555-2671, '.repeat(2000)}`.slice(
    0,
    MAX_FILTER_CHARS,
  );
  assert.deepEqual(await f.redactYielding(dense), f.redact(dense));
});

test('digit runs without a phone are still steps the yielding variant can pause between', async () => {
  const f = new PrivacyFilter();
  // Runs libphonenumber must look at, none of them a phone: the case that never paused (480 ms).
  const text = '123456a '.repeat(MAX_FILTER_CHARS / 8);
  const steps = [...phonesByRun(text, ['US'])];
  assert.equal(steps.length, MAX_FILTER_CHARS / 8);
  assert.ok(steps.every((found) => found.length === 0));
  assert.deepEqual(await f.findYielding(text), f.find(text));
});

let cluster: Cluster;
before(async () => {
  cluster = await connectCluster({ name: 'agentsprivacy', log: () => undefined });
  await cluster.startNode({ id: 'n1', actors: OPERATOR_ACTORS });
});
after(async () => {
  await cluster?.close();
});

test('text.privacy_filter operator redacts every string field and refuses a bad pattern at configure', async () => {
  const config = (attrs: Record<string, string>) => ({
    deployment: 'dep',
    opId: 'redact',
    op: 'text.privacy_filter',
    attrs,
    device: 'cpu',
    modelled: false,
    estimatedMs: 0,
    natsUrl: cluster.url,
    cluster: cluster.name,
  });
  const ref = await cluster.spawn('op-text', { id: 'redact' });
  await assert.rejects(
    ref.ask({ type: 'configure', config: config({ 'pattern.bad': '(a' }) }),
    (e: { code?: string }) => e.code === 'PRIVACY_CONFIG_INVALID',
  );
  await ref.ask({
    type: 'configure',
    config: config({ 'pattern.emp': 'EMP-[0-9]{6}', phone_regions: 'US,GB' }),
  });
  const r = (await ref.ask({
    type: 'run',
    rid: 'r1',
    ctx: { transcript: 'I am EMP-204811, call (415) 555-2671', n: 3 },
  })) as OpReply;
  assert.equal(r.out.transcript, 'I am [EMP], call [PHONE]');
  assert.equal(r.out.n, 3);
  assert.deepEqual(r.out.redactions, {
    transcript: [
      { kind: 'emp', start: 5, end: 15 },
      { kind: 'phone', start: 22, end: 36 },
    ],
  });
});
