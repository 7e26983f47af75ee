import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reference } from '@stitch/kernels';
import { DOCUMENTS, embedText, webSearch } from '../src/index.js';

test('web_search ranks the document that shares the query words first', async () => {
  for (const d of DOCUMENTS) {
    const hits = await webSearch(d.title, 3);
    assert.equal(hits[0]?.title, d.title, `query "${d.title}"`);
    assert.ok(hits[0]!.score >= hits[1]!.score && hits[1]!.score >= hits[2]!.score);
  }
});

test('compiled cosine scores agree with the TypeScript reference', async () => {
  const query = 'decode memory bandwidth bound';
  const all = new Float32Array(DOCUMENTS.length * 256);
  DOCUMENTS.forEach((d, i) => {
    all.set(embedText(`${d.title} ${d.text}`), i * 256);
  });
  const expected = reference.topK(reference.topkScores(all, embedText(query), 'cosine'), 5);
  const hits = await webSearch(query, 5);
  assert.deepEqual(
    hits.map((h) => h.title),
    expected.map((e) => DOCUMENTS[e.index]!.title),
  );
  hits.forEach((h, i) => {
    assert.ok(Math.abs(h.score - expected[i]!.score) < 1e-3);
  });
  assert.equal(hits[0]?.title, 'Prefill and decode');
});
