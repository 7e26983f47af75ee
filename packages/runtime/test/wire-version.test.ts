import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headers } from '@nats-io/transport-node';
import { RuntimeErrorCode, StitchError, WireVersionUnsupported } from '../src/index.js';
import { envelopeBlock, envelopeHeaders, H, readHeaders } from '../src/wire/envelope.js';
import { checkWireVersion, parseWireVersion, WIRE_VERSION } from '../src/wire/version.js';

const env = { traceparent: '00-abc', sender: 'host-1', deadline: 5 };

test('every envelope carries the version this build speaks, and a receiver reads it back', () => {
  assert.ok(envelopeBlock(env).includes(`\r\n${H.wire}: ${WIRE_VERSION}\r\n`));
  assert.equal(envelopeHeaders(env).get(H.wire), WIRE_VERSION);
  assert.equal(readHeaders(envelopeHeaders(env)).wire, WIRE_VERSION);
  assert.deepEqual(checkWireVersion(readHeaders(envelopeHeaders(env)).wire), parseWireVersion(WIRE_VERSION));
});

test('a receiver takes any minor of its major and the major before it', () => {
  assert.deepEqual(checkWireVersion('1.0', '1.1'), { major: 1, minor: 0 });
  assert.deepEqual(checkWireVersion('1.7', '1.1'), { major: 1, minor: 7 }, 'a newer minor only adds');
  assert.deepEqual(checkWireVersion('1.3', '2.0'), { major: 1, minor: 3 }, 'previous major');
  assert.deepEqual(checkWireVersion('2.0', '2.0'), { major: 2, minor: 0 });
});

test('a message without the header is taken as 1.0, from a build older than the header', () => {
  assert.deepEqual(checkWireVersion(readHeaders(headers()).wire, '1.0'), { major: 1, minor: 0 });
  assert.deepEqual(checkWireVersion(undefined, '2.4'), { major: 1, minor: 0 });
  assert.throws(() => checkWireVersion(undefined, '3.0'), WireVersionUnsupported);
});

test('a newer major, one two majors back, or a malformed version is refused with a typed error', () => {
  for (const [received, speaks] of [
    ['2.0', '1.9'],
    ['1.0', '3.0'],
    ['1', '1.0'],
    ['1.0.0', '1.0'],
    ['01.0', '1.0'],
    ['-1.0', '1.0'],
    ['v1.0', '1.0'],
    ['', '1.0'],
  ] as const) {
    assert.throws(
      () => checkWireVersion(received, speaks),
      (err: unknown) =>
        err instanceof WireVersionUnsupported &&
        err instanceof StitchError &&
        err.code === RuntimeErrorCode.WireVersion &&
        err.received === received &&
        err.message.includes(speaks),
      `${received} at ${speaks}`,
    );
  }
});

test('the version a build speaks must itself be a version', () => {
  assert.throws(() => checkWireVersion('1.0', 'next'), TypeError);
  assert.ok(parseWireVersion(WIRE_VERSION), 'this build speaks a well-formed version');
});
