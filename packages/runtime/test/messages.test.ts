// What reaches an actor's turn is a message of one of its handlers; system messages are answered
// before the mailbox, and only when asked directly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkMessage } from '../src/actor/messages.js';
import { BadMessage } from '../src/errors.js';

const def = { type: 't', handlers: { add: () => 1 } } as never;

test('a message names a handler, or asked directly a system message; anything else is a bad message', () => {
  assert.deepEqual(checkMessage(def, 't/a', { type: 'add', by: 1 }), { type: 'add', by: 1 });
  assert.deepEqual(checkMessage(def, 't/a', { type: '$inspect' }, true), { type: '$inspect' });
  const bad = (value: unknown, request: boolean, text: RegExp) =>
    assert.throws(
      () => checkMessage(def, 't/a', value, request),
      (e: unknown) => e instanceof BadMessage && text.test(e.message),
    );
  bad({ type: '$nosuch' }, true, /no such system message \(there are \$inspect and \$outcome\)/);
  bad({ type: '$outcome', key: 'k' }, false, /only when asked directly/);
  bad({ type: 'toString' }, false, /has no handler "toString"/);
  bad({ type: '__proto__' }, true, /has no handler/);
  bad({ type: 1 }, true, /string "type"/);
  bad(null, false, /string "type"/);
});
