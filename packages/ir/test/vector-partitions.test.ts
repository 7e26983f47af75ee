import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultRegistry, demandTable, IrError, PassManager, parseGraph } from '../src/index.js';

const graph = (attrs: string) => `"agent.graph"() ({
  %q = "agent.input"() {name = "q"} : () -> !agent.json
  %hits = "memory.vector_search"(%q) {dim = 64 : i64, index = "docs"${attrs}, k = 5 : i64, n_vectors = 1000 : i64} : (!agent.json) -> !agent.json
  "agent.output"(%hits) {name = "a"} : (!agent.json) -> ()
}) {sym_name = "rag"} : () -> ()
`;

const rows = (attrs: string) =>
  demandTable(
    new PassManager({ registry: defaultRegistry() })
      .add('decompose')
      .add('annotate-demand')
      .run(parseGraph(graph(attrs), 'rag.mlir')),
  );

test('a search with partitions = 3 becomes three searches over a third of the vectors each, merged under its own id', () => {
  const r = rows(', partitions = 3 : i64');
  const searches = r.filter((x) => x.op === 'memory.vector_search');
  assert.deepEqual(
    searches.map((s) => [s.id, s.attrs.partition, s.attrs.partitions, s.attrs.n_vectors]),
    [
      ['hits_p0', 0, 3, 334],
      ['hits_p1', 1, 3, 334],
      ['hits_p2', 2, 3, 334],
    ],
  );
  for (const s of searches) assert.deepEqual(s.deps, ['q']);
  const merge = r.find((x) => x.op === 'memory.vector_merge')!;
  assert.equal(merge.id, 'hits');
  assert.deepEqual(merge.deps, ['hits_p0', 'hits_p1', 'hits_p2']);
  assert.deepEqual(merge.attrs, { k: 5, partitions: 3 });
  assert.deepEqual(r.find((x) => x.op === 'agent.output')!.deps, ['hits']);
  // Each partition reads a third of the table the whole search reads.
  const whole = rows('').find((x) => x.op === 'memory.vector_search')!;
  assert.ok(Math.abs(searches[0]!.demand.memoryBytes / whole.demand.memoryBytes - 334 / 1000) < 1e-9);
});

test('partitions = 1 (or none) leaves the search whole', () => {
  for (const attrs of ['', ', partitions = 1 : i64']) {
    const r = rows(attrs);
    assert.deepEqual(
      r.map((x) => x.op),
      ['agent.input', 'memory.vector_search', 'agent.output'],
    );
  }
});

test('partitions out of 1..64, or a partition without its count, is refused with its line and column', () => {
  for (const [attrs, why] of [
    [', partitions = 0 : i64', /partitions = 0 is not in 1\.\.64/],
    [', partitions = 65 : i64', /partitions = 65 is not in 1\.\.64/],
    [', partition = 1 : i64', /partition = 1 needs partitions > 1/],
    [', partition = 3 : i64, partitions = 3 : i64', /partition = 3 needs partitions > 3/],
  ] as const) {
    assert.throws(
      () => rows(attrs),
      (e: unknown) => e instanceof IrError && why.test(e.message) && /:3:\d+: error/.test(e.message),
      attrs,
    );
  }
});
