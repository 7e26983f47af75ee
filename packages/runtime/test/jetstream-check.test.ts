// Which failures of the JetStream API check set-up keeps waiting through on a cluster that is still
// forming, and which it reports at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { PermissionViolationError, TimeoutError } from '@nats-io/transport-node';
import { waitingCannotMend } from '../src/cluster/connect.js';

const apiError = (code: number, description: string) =>
  new JetStreamApiError({ code: 503, err_code: code, description });

test('an account without JetStream or a user without API permission is reported at once', () => {
  // nats.js wraps the API's answer for an account without JetStream.
  const notEnabled = new Error('jetstream not enabled for account', {
    cause: apiError(JetStreamApiCodes.JetStreamNotEnabledForAccount, 'jetstream not enabled for account'),
  });
  assert.equal(waitingCannotMend(notEnabled), true);
  const denied = new PermissionViolationError(
    'Permissions Violation for Publish to "$JS.API.INFO"',
    'publish',
    '$JS.API.INFO',
  );
  assert.equal(waitingCannotMend(denied), true);
  assert.equal(waitingCannotMend(new Error('request failed', { cause: denied })), true);
});

test('no answer, or JetStream still electing, is waited through', () => {
  assert.equal(waitingCannotMend(new TimeoutError()), false);
  assert.equal(waitingCannotMend(apiError(10008, 'JetStream system temporarily unavailable')), false);
  assert.equal(waitingCannotMend(new Error('jetstream is not enabled')), false);
  assert.equal(waitingCannotMend('a string'), false);
});
