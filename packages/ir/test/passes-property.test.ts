import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  AgentGraphBuilder,
  defaultRegistry,
  demandTable,
  findModel,
  graphsEqual,
  PassManager,
  parseGraph,
  printGraph,
} from '../src/index.js';
import { prefillDemand } from '../src/internal.js';
import { mlirOpt } from './mlir-opt.js';

const registry = defaultRegistry();

const split = fc.oneof(
  fc.record({ tp: fc.integer({ min: 1, max: 8 }), layerGroups: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ ep: fc.integer({ min: 2, max: 4 }), layerGroups: fc.integer({ min: 1, max: 8 }) }),
);

test('decompose with any tp/ep split the heads allow keeps the prefill totals, verifies, and survives mlir-opt; others are refused', () => {
  let roundTrips = 0;
  fc.assert(
    fc.property(
      fc.constantFrom('tiny-llama', 'llama3-8b', 'llama3-70b'),
      fc.integer({ min: 1, max: 8192 }),
      fc.integer({ min: 1, max: 2048 }),
      split,
      (model, promptTokens, maxTokens, options) => {
        const g = new AgentGraphBuilder('p')
          .input('q')
          .llm('a', { model, promptTokens, maxTokens })
          .output('o')
          .edge('q', 'a')
          .edge('a', 'o')
          .toGraph();
        const pm = new PassManager({ registry, strict: true })
          .add('decompose', options)
          .add('annotate-demand');
        const m = findModel(model)!;
        if ('tp' in options && (m.nHeads % options.tp !== 0 || m.nKvHeads % options.tp !== 0)) {
          // A tp the heads do not split into is refused as an option, as it is as an attribute.
          assert.throws(() => pm.run(g), { code: 'IR_PASS' });
          return;
        }
        const out = pm.run(g);
        const rows = demandTable(out);
        const prefills = rows.filter((r) => r.op === 'llm.prefill');
        const want = prefillDemand(m, promptTokens);
        const flops = prefills.reduce((n, r) => n + r.demand.flops, 0);
        // Each op's demand is rounded to an integer, so the sum may drift by one per shard.
        assert.ok(Math.abs(flops - want.flops) <= prefills.length, `${flops} vs ${want.flops}`);
        const transfer = rows.find((r) => r.op === 'kv.transfer')!;
        const kv = Object.values(transfer.edgeBytes).reduce((n, b) => n + b, 0);
        // A whole prefill writes the KV cache of every prompt token, which the transfer then carries.
        assert.ok(Math.abs(kv - want.bytesWritten) <= prefills.length);
        const shards = 'tp' in options ? options.tp : options.ep;
        if (shards > 1) assert.equal(prefills.length, shards * Math.min(options.layerGroups, m.layers));
        if (roundTrips++ < 15) assert.ok(graphsEqual(parseGraph(mlirOpt(printGraph(out))), out));
      },
    ),
    { numRuns: 80 },
  );
});
