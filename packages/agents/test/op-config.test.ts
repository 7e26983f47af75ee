// The schema an operator applies to a `configure` message before acting on any of it.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import {
  AgentsError,
  AgentsErrorCode,
  allowOperatorNatsUrls,
  MAX_ESTIMATED_MS,
  type OpConfig,
  validateOpConfig,
} from '../src/index.js';

afterEach(() => allowOperatorNatsUrls('first'));

const good: OpConfig = {
  deployment: 'dep',
  opId: 'op_1',
  op: 'memory.load',
  attrs: { key: 'profile', tokens: 3, flag: true },
  device: 'cpu',
  modelled: false,
  estimatedMs: 12.5,
  natsUrl: 'nats://127.0.0.1:4222',
  cluster: 'demo_1',
};

function rejected(cfg: unknown, what: RegExp): AgentsError {
  try {
    validateOpConfig(cfg);
  } catch (e) {
    assert.ok(e instanceof AgentsError, String(e));
    assert.equal(e.code, AgentsErrorCode.OpConfigInvalid);
    assert.match(e.message, what);
    return e;
  }
  assert.fail(`expected ${JSON.stringify(cfg)?.slice(0, 80)} to be rejected`);
}

test('a well-formed config passes unchanged', () => {
  allowOperatorNatsUrls('any');
  assert.deepEqual(validateOpConfig(good), good);
  assert.deepEqual(validateOpConfig({ ...good, estimatedMs: 0 }).estimatedMs, 0);
  assert.deepEqual(
    validateOpConfig({ ...good, estimatedMs: MAX_ESTIMATED_MS }).estimatedMs,
    MAX_ESTIMATED_MS,
  );
  assert.equal(
    validateOpConfig({ ...good, natsUrl: 'tls://nats.example:4443' }).natsUrl,
    'tls://nats.example:4443',
  );
});

test('estimatedMs: finite, ≥ 0 and at most MAX_ESTIMATED_MS', () => {
  allowOperatorNatsUrls('any');
  assert.equal(MAX_ESTIMATED_MS, 60_000);
  for (const v of [Number.NaN, Number.POSITIVE_INFINITY, -1, MAX_ESTIMATED_MS + 1, 2 ** 53, '5', null]) {
    rejected({ ...good, estimatedMs: v }, /estimatedMs/);
  }
});

test('natsUrl: only nats:// or tls:// without credentials, path or query', () => {
  allowOperatorNatsUrls('any');
  for (const v of [
    'http://127.0.0.1:4222',
    'file:///etc/passwd',
    'ws://127.0.0.1:8080',
    'not a url',
    'nats://user:pw@127.0.0.1:4222',
    'nats://127.0.0.1:4222/x?y=1',
    `nats://${'a'.repeat(3000)}:4222`,
    '',
    42,
  ]) {
    rejected({ ...good, natsUrl: v }, /natsUrl/);
  }
});

test('natsUrl: an operator process uses the first server it was configured with, unless told otherwise', () => {
  allowOperatorNatsUrls('first');
  validateOpConfig(good);
  validateOpConfig({ ...good, natsUrl: 'nats://127.0.0.1:4222/' });
  const e = rejected({ ...good, natsUrl: 'nats://10.0.0.9:4222' }, /natsUrl nats:\/\/10\.0\.0\.9:4222/);
  assert.match(e.message, /STITCH_OPERATOR_NATS_URLS|allowOperatorNatsUrls/);
  // A config rejected for another reason pins nothing.
  allowOperatorNatsUrls('first');
  rejected({ ...good, natsUrl: 'nats://10.0.0.9:4222', estimatedMs: -1 }, /estimatedMs/);
  validateOpConfig(good);
  // An explicit list replaces the first-use rule.
  allowOperatorNatsUrls(['nats://a:1', 'tls://b:2']);
  validateOpConfig({ ...good, natsUrl: 'tls://b:2' });
  rejected(good, /natsUrl/);
});

test('the hosting process can set the allowed servers in STITCH_OPERATOR_NATS_URLS', () => {
  process.env.STITCH_OPERATOR_NATS_URLS = 'nats://a:1, nats://b:2';
  try {
    allowOperatorNatsUrls('first');
    validateOpConfig({ ...good, natsUrl: 'nats://b:2' });
    validateOpConfig({ ...good, natsUrl: 'nats://a:1' });
    rejected(good, /natsUrl/);
    process.env.STITCH_OPERATOR_NATS_URLS = '*';
    allowOperatorNatsUrls('first');
    validateOpConfig({ ...good, natsUrl: 'nats://c:3' });
    validateOpConfig(good);
  } finally {
    delete process.env.STITCH_OPERATOR_NATS_URLS;
  }
});

test('attrs, names and flags are bounded and typed', () => {
  allowOperatorNatsUrls('any');
  const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i]));
  rejected({ ...good, attrs: many }, /attrs/);
  rejected({ ...good, attrs: { s: 'x'.repeat(100_000) } }, /attrs\.s/);
  rejected({ ...good, attrs: { ['k'.repeat(1000)]: 1 } }, /attrs/);
  rejected({ ...good, attrs: { o: { nested: true } } }, /attrs\.o/);
  rejected({ ...good, attrs: { n: Number.NaN } }, /attrs\.n/);
  rejected({ ...good, attrs: [] }, /attrs/);
  rejected({ ...good, cluster: 'a.b>' }, /cluster/);
  rejected({ ...good, deployment: 'x'.repeat(10_000) }, /deployment/);
  rejected({ ...good, op: 42 }, /op\b/);
  rejected({ ...good, modelled: 'yes' }, /modelled/);
  rejected(null, /config/);
  rejected('configure', /config/);
});
