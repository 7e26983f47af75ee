import assert from 'node:assert/strict';
import test from 'node:test';
import { normaliseWords, wordErrorRate, wordErrors } from '../src/index.js';

test('words are normalised as recognisers write them', () => {
  assert.deepEqual(normaliseWords("What's the Weather, Paris?"), ["what's", 'the', 'weather', 'paris']);
});

test('substitutions, deletions and insertions are counted by the cheapest alignment', () => {
  assert.deepEqual(wordErrors('the cat sat on the mat', 'the cat sat on the mat'), {
    words: 6,
    substitutions: 0,
    deletions: 0,
    insertions: 0,
  });
  assert.deepEqual(wordErrors('the cat sat on the mat', 'the bat sat the mat today'), {
    words: 6,
    substitutions: 1,
    deletions: 1,
    insertions: 1,
  });
  assert.deepEqual(wordErrors('one two', ''), { words: 2, substitutions: 0, deletions: 2, insertions: 0 });
});

test('the rate pools the words of every utterance', () => {
  const wer = wordErrorRate([
    { reference: 'a b c d', hypothesis: 'a b c d' },
    { reference: 'e f', hypothesis: 'e x y' },
  ]);
  assert.equal(wer, 2 / 6);
  assert.equal(wordErrorRate([]), 0);
});
