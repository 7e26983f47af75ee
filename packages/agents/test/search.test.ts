import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DOCUMENTS, webSearch } from '../src/index.js';

test('web_search ranks the document that shares the query words first', () => {
  for (const d of DOCUMENTS) {
    const hits = webSearch(d.title, 3);
    assert.equal(hits[0]?.title, d.title, `query "${d.title}"`);
    assert.ok(hits[0]!.score >= hits[1]!.score && hits[1]!.score >= hits[2]!.score);
  }
});

test('web_search returns k hits with cosine scores in [0, 1]', () => {
  const hits = webSearch('decode memory bandwidth bound', 5);
  assert.equal(hits.length, 5);
  for (const h of hits) assert.ok(h.score >= 0 && h.score <= 1.0001);
  assert.equal(hits[0]?.title, 'Prefill and decode');
});
