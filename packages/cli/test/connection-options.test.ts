import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import {
  addConnectionOptions,
  type ConnectionFlags,
  connectionFromFlags,
} from '../src/connection-options.js';

const FILE = fileURLToPath(import.meta.url);
const NATS = 'nats://a:4222,nats://b:4222';

/** Parses argv with the connection flags added to a bare command, as each command does. */
function parse(argv: string[], options?: { natsRequired?: boolean }): ConnectionFlags {
  const command = addConnectionOptions(
    new Command('x').exitOverride().configureOutput({ writeErr: () => {} }),
    options,
  );
  command.parse(argv, { from: 'user' });
  return command.opts<ConnectionFlags>();
}

const invalid = (pattern: RegExp) => (e: unknown) =>
  (e as { code?: string }).code === 'RUNTIME_OPTIONS' && pattern.test((e as Error).message);

test('no flags: an embedded server, no connection fields', () => {
  assert.deepEqual(connectionFromFlags(parse([]), {}), {});
});

test('--nats splits URLs; user and password, creds, token and TLS map to ConnectOptions', () => {
  assert.deepEqual(connectionFromFlags(parse(['--nats', NATS, '--user', 'u', '--password', 'p']), {}), {
    nats: ['nats://a:4222', 'nats://b:4222'],
    user: 'u',
    pass: 'p',
  });
  assert.deepEqual(
    connectionFromFlags(parse(['--nats', NATS, '--creds', 'a.creds']), {}).credentials,
    'a.creds',
  );
  assert.deepEqual(connectionFromFlags(parse(['--nats', NATS, '--token', 't']), {}).token, 't');
  assert.deepEqual(
    connectionFromFlags(parse(['--nats', NATS, '--tls-ca', FILE, '--tls-cert', FILE, '--tls-key', FILE]), {})
      .tls,
    { caFile: FILE, certFile: FILE, keyFile: FILE },
  );
  assert.deepEqual(connectionFromFlags(parse(['--nats', NATS, '--tls-ca', FILE]), {}).tls, { caFile: FILE });
});

test('$NATS_PASSWORD is the password of --user; $NATS_TOKEN applies only without another credential', () => {
  const env = { NATS_PASSWORD: 'from-env', NATS_TOKEN: 'env-token' };
  assert.equal(connectionFromFlags(parse(['--nats', NATS, '--user', 'u']), env).pass, 'from-env');
  assert.equal(connectionFromFlags(parse(['--nats', NATS, '--user', 'u', '--password', 'p']), env).pass, 'p');
  assert.equal(connectionFromFlags(parse(['--nats', NATS, '--user', 'u']), env).token, undefined);
  assert.equal(connectionFromFlags(parse(['--nats', NATS]), env).token, 'env-token');
  assert.equal(connectionFromFlags(parse(['--nats', NATS, '--token', 't']), env).token, 't');
  assert.equal(connectionFromFlags(parse(['--nats', NATS, '--user', 'u']), {}).pass, '');
});

test('--credentials is a hidden alias of --creds', () => {
  assert.equal(
    connectionFromFlags(parse(['--nats', NATS, '--credentials', 'a.creds']), {}).credentials,
    'a.creds',
  );
  assert.throws(
    () => connectionFromFlags(parse(['--nats', NATS, '--credentials', 'a.creds', '--creds', 'b.creds']), {}),
    invalid(/old name of --creds/),
  );
});

test('--nkey is the seed file of an nkey user', () => {
  assert.deepEqual(connectionFromFlags(parse(['--nats', NATS, '--nkey', FILE]), {}), {
    nats: ['nats://a:4222', 'nats://b:4222'],
    nkeySeedFile: FILE,
  });
});

test('invalid combinations are InvalidOptions with the flag named', () => {
  const cases: [string[], RegExp][] = [
    [['--nats', NATS, '--password', 'p'], /--password needs --user/],
    [['--nats', NATS, '--tls-cert', FILE], /--tls-cert and --tls-key go together/],
    [['--nats', NATS, '--tls-key', FILE], /--tls-cert and --tls-key go together/],
    [['--nats', NATS, '--user', 'u', '--token', 't'], /--user and --token are exclusive/],
    [['--nats', NATS, '--creds', 'c', '--user', 'u'], /--creds and --user are exclusive/],
    [['--nats', NATS, '--nkey', FILE, '--token', 't'], /--nkey and --token are exclusive/],
    [['--nats', NATS, '--nkey', '/nonexistent/a.nk'], /--nkey \/nonexistent\/a\.nk is not readable/],
    [['--nkey', FILE], /--nkey given without --nats/],
    [['--nats', NATS, '--tls-ca', '/nonexistent/ca.pem'], /--tls-ca \/nonexistent\/ca\.pem is not readable/],
    [['--tls-ca', FILE], /--tls-ca given without --nats/],
    [['--user', 'u'], /--user given without --nats/],
    [['--nats', ','], /--nats needs at least one server URL/],
  ];
  for (const [argv, pattern] of cases)
    assert.throws(() => connectionFromFlags(parse(argv), {}), invalid(pattern), argv.join(' '));
});

test('--nats is mandatory where the command asks for it', () => {
  assert.throws(() => parse([], { natsRequired: true }), /required option '--nats <urls>' not specified/);
});
