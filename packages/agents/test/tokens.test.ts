// The fallback token count (when an endpoint reports no usage): exact for ordinary text, linear for
// long runs of letters, and never one long block of the event loop.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tiktoken } from 'js-tiktoken/lite';
import ranks from 'js-tiktoken/ranks/o200k_base';
import { countTokens } from '../src/tokens.js';
import { ticker } from './loop-turns.js';

const enc = new Tiktoken(ranks);
const prose = 'The quick brown fox, 42 times over; it jumps — again! ';

test('ordinary text counts as the BPE encodes it, across the slices it is counted in', async () => {
  const text = prose.repeat(5000); // 270 000 characters: five slices
  assert.equal(await countTokens(text), enc.encode(text).length);
  assert.equal(await countTokens(''), 0);
});

test('a run of 20 000 letters counts as its 256-letter slices (whole, BPE takes quadratic time)', async () => {
  const run = 'abcdefghij'.repeat(2000);
  let expected = 0;
  for (let i = 0; i < run.length; i += 256) expected += enc.encode(run.slice(i, i + 256)).length;
  assert.equal(await countTokens(`${prose}${run}${prose}`), 2 * enc.encode(prose).length + expected);
});

test('a long text is counted with turns for the event loop between its slices', async () => {
  await countTokens('warm'); // the encoder loads on first use
  const loop = ticker();
  await countTokens(prose.repeat(5000));
  loop.stop();
  assert.ok(loop.turns >= 4, `${loop.turns} turns`);
});
