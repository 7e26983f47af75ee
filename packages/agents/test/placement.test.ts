import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CorrectionTable } from '@stitch/cost';
import { loadMilpSolver } from '@stitch/planner';
import type { CapabilityRecord } from '@stitch/runtime';
import { AgentsError, analyseGraph, classifyNodes, type NodeClass, planDeployment } from '../src/index.js';

const sample = readFileSync(new URL('../../ir/samples/tool-agent.tiny-llama.mlir', import.meta.url), 'utf8');
const fleet: NodeClass[] = [
  { nodeId: 'a', classId: 'cpu', modelled: false, load: 0, slots: 1 },
  { nodeId: 'b', classId: 'h100', modelled: true, load: 0, slots: 1 },
  { nodeId: 'c', classId: 'gaudi3', modelled: true, load: 0, slots: 1 },
];

test('the tool agent decomposes into granular ops with demand and its SLA', () => {
  const a = analyseGraph(sample);
  assert.equal(a.name, 'tool_agent');
  assert.equal(a.slaMs, 5000);
  const ops = a.rows.map((r) => r.op);
  for (const op of [
    'llm.tokenize',
    'llm.prefill',
    'kv.transfer',
    'llm.decode',
    'llm.detokenize',
    'tool.invoke',
  ])
    assert.ok(ops.includes(op), op);
  assert.ok(a.rows.find((r) => r.op === 'llm.prefill')!.demand.flops > 0);
});

test('host ops stay on cpu, the "gpu" hint holds, every op lands on a live node of its class', () => {
  const p = planDeployment({ deployment: 'd', analysed: analyseGraph(sample), nodes: fleet });
  assert.equal(p.ops.length, analyseGraph(sample).rows.length);
  for (const o of p.ops) {
    const node = fleet.find((n) => n.nodeId === o.node)!;
    assert.equal(node.classId, o.classId);
    assert.equal(o.modelled, o.classId !== 'cpu');
    if (['tool', 'memory', 'agent'].includes(o.kind)) assert.equal(o.classId, 'cpu', o.id);
    assert.match(o.actorId, /^[A-Za-z0-9_-]+$/);
    // The sample's llm.call carries placement = "gpu": its decomposed ops stay on accelerators.
    if (o.attrs.placement === 'gpu') assert.notEqual(o.classId, 'cpu', o.id);
  }
  assert.ok(p.ops.some((o) => o.attrs.placement === 'gpu'));
  assert.ok(!p.notes.some((n) => n.includes('placement hints')));
  assert.ok(p.latencyMs <= 5000);
});

test('a hint that names no live class or kind is left to the planner, with a note', () => {
  const p = planDeployment({ deployment: 'd', analysed: analyseGraph(sample), nodes: [fleet[0]!] });
  for (const o of p.ops) assert.equal(o.classId, 'cpu', o.id);
  assert.ok(p.notes.some((n) => n.includes('placement hints')));
});

test('a node that leaves takes its class with it; kept nodes stay put', () => {
  const analysed = analyseGraph(sample);
  const first = planDeployment({ deployment: 'd', analysed, nodes: fleet });
  const used = first.ops.find((o) => o.modelled)?.node;
  assert.ok(used, 'some op is placed on a modelled class');
  const rest = fleet.filter((n) => n.nodeId !== used);
  const current = Object.fromEntries(first.ops.map((o) => [o.id, o.node]));
  const second = planDeployment({ deployment: 'd', analysed, nodes: rest, current });
  for (const o of second.ops) assert.notEqual(o.node, used);
  for (const o of second.ops.filter((x) => x.classId === 'cpu')) assert.equal(o.node, 'a');
});

test('corrections scale the estimate of their (kind, class)', () => {
  const analysed = analyseGraph(sample);
  const base = planDeployment({ deployment: 'd', analysed, nodes: [fleet[0]!] });
  const correction = new CorrectionTable({ alpha: 1 });
  correction.observe('tool', 'cpu', 100, 300);
  const scaled = planDeployment({ deployment: 'd', analysed, nodes: [fleet[0]!], correction });
  const search = (p: typeof base) => p.ops.find((o) => o.id === 'search')!.estimatedMs;
  assert.ok(Math.abs(search(scaled) / search(base) - 3) < 1e-6);
  assert.equal(scaled.rawMs.search!.cpu, base.rawMs.search!.cpu);
});

test('an op measured apart from its kind is estimated by its own factor, in its deployment only', () => {
  const analysed = analyseGraph(sample);
  const correction = new CorrectionTable({ alpha: 1, opSamples: 1 });
  correction.observe('llm', 'cpu', 10, 40, { deployment: 'd', op: 'plan_prefill' });
  correction.observe('llm', 'cpu', 10, 5, { deployment: 'd', op: 'plan_ids' });
  const plan = (deployment: string) =>
    planDeployment({ deployment, analysed, nodes: [fleet[0]!], correction });
  const ratio = (p: ReturnType<typeof plan>, id: string) =>
    p.ops.find((o) => o.id === id)!.estimatedMs / p.rawMs[id]!.cpu!;
  const d = plan('d');
  assert.ok(Math.abs(ratio(d, 'plan_prefill') - 4) < 1e-9);
  assert.ok(Math.abs(ratio(d, 'plan_ids') - 0.5) < 1e-9);
  // Another deployment of the same graph gets the kind's factor (its latest sample, alpha 1) for both.
  const e = plan('e');
  assert.ok(Math.abs(ratio(e, 'plan_prefill') - 0.5) < 1e-9);
  assert.ok(Math.abs(ratio(e, 'plan_ids') - 0.5) < 1e-9);
});

test("each placed op records the bytes its deps send it (the control loop prices a move's edges with them)", () => {
  const analysed = analyseGraph(sample);
  const plan = planDeployment({ deployment: 'd', analysed, nodes: fleet });
  for (const r of analysed.rows) {
    const o = plan.ops.find((x) => x.id === r.id)!;
    assert.deepEqual(o.edgeBytes, r.deps.length > 0 ? r.edgeBytes : undefined, r.id);
  }
  assert.ok(plan.ops.some((o) => Object.values(o.edgeBytes ?? {}).some((b) => b > 0)));
});

test('no nodes is a typed error that says how to start one', () => {
  assert.throws(
    () => planDeployment({ deployment: 'd', analysed: analyseGraph(sample), nodes: [] }),
    (e) => e instanceof AgentsError && e.code === 'DEPLOY_NO_NODES' && /stitch node/.test(e.message),
  );
});

test('graphs with bounded loops (the voice agent) are unrolled before planning', () => {
  const voice = readFileSync(
    new URL('../../ir/samples/voice-agent.tiny-llama.mlir', import.meta.url),
    'utf8',
  );
  const p = planDeployment({ deployment: 'v', analysed: analyseGraph(voice), nodes: fleet });
  const ids = new Set(p.ops.map((o) => o.id));
  assert.equal(ids.size, p.ops.length);
  const seen = new Set<string>();
  for (const o of p.ops) {
    for (const d of o.deps) assert.ok(seen.has(d), `${o.id} follows its dep ${d}`);
    seen.add(o.id);
  }
  assert.ok(
    p.ops.filter((o) => o.op === 'llm.prefill').length > 1,
    'the loop body appears once per iteration',
  );
});

test('a graph planned for a rate keeps what its ops keep busy within the live slots of each class', () => {
  const atRate = (rps: number) =>
    analyseGraph(sample.replace('sla_ms = 5000 : i64,', `sla_ms = 5000 : i64, rate_rps = ${rps}.0 : f64,`));
  const nodes: NodeClass[] = [
    { nodeId: 'a', classId: 'cpu', modelled: false, load: 0, slots: 256 },
    { nodeId: 'b', classId: 'h100', modelled: true, load: 0, slots: 2 },
    { nodeId: 'c', classId: 'gaudi3', modelled: true, load: 0, slots: 1 },
  ];
  const slots = (classId: string) =>
    nodes.filter((n) => n.classId === classId).reduce((s, n) => s + n.slots, 0);
  const onH100 = (p: ReturnType<typeof planDeployment>) => p.ops.filter((o) => o.classId === 'h100');
  // No rate: slots bound nothing, and the model ops share the cheaper gaudi3.
  assert.equal(onH100(planDeployment({ deployment: 'd', analysed: analyseGraph(sample), nodes })).length, 0);
  for (const rps of [100, 400]) {
    const p = planDeployment({ deployment: 'd', analysed: atRate(rps), nodes });
    assert.ok(
      p.notes.some((n) => n.startsWith(`sized for ${rps} requests/s`)),
      p.notes.join('; '),
    );
    const busy = new Map<string, number>();
    for (const o of p.ops) busy.set(o.classId, (busy.get(o.classId) ?? 0) + (rps * o.estimatedMs) / 1000);
    for (const [classId, b] of busy) assert.ok(b <= 0.8 * slots(classId) + 1e-9, `${classId} busy ${b}`);
    // At 100 req/s gaudi3's one slot holds the model ops (≈0.25 busy); at 400 (≈1) they overflow to h100.
    assert.equal(onH100(p).length > 0, rps === 400, `${rps}: ${onH100(p).map((o) => o.id)}`);
  }
  assert.throws(
    () => planDeployment({ deployment: 'd', analysed: atRate(800), nodes }),
    (e) => e instanceof AgentsError && e.code === 'DEPLOY_INFEASIBLE' && /rate_rps 800/.test(e.message),
  );
  assert.throws(
    () => analyseGraph(sample.replace('sla_ms = 5000 : i64,', 'sla_ms = 5000 : i64, rate_rps = -1.0 : f64,')),
    (e) => e instanceof AgentsError && e.code === 'DEPLOY_INVALID' && /rate_rps/.test(e.message),
  );
});

test('at a planned rate an op busier than one node may hold gets replicas on more nodes of its class, each under 80 % busy', () => {
  const graph = readFileSync(new URL('../../ir/samples/tool-agent.llama3-8b.mlir', import.meta.url), 'utf8')
    .replace(/max_tokens = \d+ : i64/, 'max_tokens = 64 : i64')
    .replace('latency_ms = 350', 'latency_ms = 20');
  const nodes: NodeClass[] = [
    { nodeId: 'a', classId: 'cpu', modelled: false, load: 0, slots: 2 },
    { nodeId: 'g1', classId: 'gaudi3', modelled: true, load: 0, slots: 1 },
    { nodeId: 'g2', classId: 'gaudi3', modelled: true, load: 0, slots: 1 },
  ];
  const plan = (rps: number) =>
    planDeployment({
      deployment: 'd',
      analysed: analyseGraph(
        graph.replace('sla_ms = 5000 : i64,', `sla_ms = 5000 : i64, rate_rps = ${rps}.0 : f64,`),
      ),
      nodes,
    });
  // At 2 req/s decode keeps 0.56 of a slot busy: one node holds it.
  assert.equal(plan(2).ops.find((o) => o.op === 'llm.decode')!.replicas, undefined);
  const p = plan(4);
  const decode = p.ops.find((o) => o.op === 'llm.decode')!;
  assert.deepEqual(decode.replicas, [
    { actorId: `${decode.actorId}-r1`, node: decode.node === 'g1' ? 'g2' : 'g1' },
  ]);
  // Each activation takes an equal share; no node's ops keep more than 80 % of its slots busy.
  const busy = new Map<string, number>();
  for (const o of p.ops) {
    const all = [o.node, ...(o.replicas ?? []).map((r) => r.node)];
    for (const n of all) busy.set(n, (busy.get(n) ?? 0) + (4 * o.estimatedMs) / 1000 / all.length);
  }
  for (const n of nodes)
    assert.ok((busy.get(n.nodeId) ?? 0) <= 0.8 * n.slots + 1e-9, `${n.nodeId}: ${busy.get(n.nodeId)}`);
});

test('a stateful op (a vector search) is never replicated by a planned rate: it stays on one node', () => {
  const rag = `"agent.graph"() ({
  %q = "agent.input"() {name = "q"} : () -> !agent.json
  %hits = "memory.vector_search"(%q) {dim = 4096 : i64, index = "docs", k = 5 : i64, n_vectors = 2000000 : i64} : (!agent.json) -> !agent.json
  "agent.output"(%hits) {name = "a"} : (!agent.json) -> ()
}) {rate_rps = 40.0 : f64, sla_ms = 5000 : i64, sym_name = "rag"} : () -> ()
`;
  const nodes: NodeClass[] = ['a', 'b', 'c'].map((nodeId) => ({
    nodeId,
    classId: 'cpu',
    modelled: false,
    load: 0,
    slots: 4,
  }));
  const p = planDeployment({ deployment: 'r', analysed: analyseGraph(rag), nodes });
  const search = p.ops.find((o) => o.op === 'memory.vector_search')!;
  // It keeps more than one node's 3.2 slots busy, and still has no replica.
  assert.ok((40 * search.estimatedMs) / 1000 > 3.2, `busy ${(40 * search.estimatedMs) / 1000}`);
  assert.equal(search.replicas, undefined);
});

test('an SLA no placement meets fails a strict graph; a best-effort one gets the cheapest of the fastest, with a note', async () => {
  const tight = (policy: string) =>
    analyseGraph(sample.replace('sla_ms = 5000 : i64,', `sla_ms = 10 : i64,${policy}`));
  for (const milp of [null, await loadMilpSolver()]) {
    let fastestMs = Number.NaN;
    for (const policy of ['', ' sla_policy = "strict",'])
      assert.throws(
        () => planDeployment({ deployment: 'd', analysed: tight(policy), nodes: fleet, milp }),
        (e) => {
          fastestMs = Number(/the fastest found takes ([\d.]+) ms/.exec((e as Error).message)?.[1]);
          return e instanceof AgentsError && e.code === 'DEPLOY_INFEASIBLE' && fastestMs > 10;
        },
      );
    const p = planDeployment({
      deployment: 'd',
      analysed: tight(' sla_policy = "best_effort",'),
      nodes: fleet,
      milp,
    });
    // As fast as the fastest placement the strict plan found (its message rounds to µs), and said so.
    assert.ok(p.latencyMs > 10 && p.latencyMs <= fastestMs + 1e-3, `${p.latencyMs} against ${fastestMs}`);
    const note = p.notes.find((n) => n.startsWith('SLA 10 ms not met'));
    assert.ok(note?.includes('best_effort'), p.notes.join('; '));
    assert.ok(p.ops.every((o) => fleet.find((n) => n.nodeId === o.node)?.classId === o.classId));
  }
  assert.throws(
    () => analyseGraph(sample.replace('sla_ms = 5000 : i64,', 'sla_ms = 5000 : i64, sla_policy = "soft",')),
    (e) => e instanceof AgentsError && e.code === 'DEPLOY_INVALID' && /sla_policy/.test(e.message),
  );
});

test('a draining node is no placement target: classifyNodes leaves it out, as it does an unhealthy one; it marks one that sheds load', () => {
  const record = (nodeId: string, extra: Partial<CapabilityRecord> = {}): CapabilityRecord => ({
    nodeId,
    incarnation: `${nodeId}-1`,
    host: 'h',
    pid: 1,
    startedAt: 0,
    heartbeatAt: 0,
    devices: [{ kind: 'cpu', model: 'm', arch: 'x64', cores: 2, features: [], x86Level: null }],
    memory: { totalBytes: 1, freeBytes: 1, rssBytes: 1 },
    labels: {},
    actorTypes: ['op-tool'],
    load: { actors: 0, queued: 0, running: 0, loadAvg1: 0 },
    eventLoopLagMs: { p99: 0, max: 0 },
    healthy: true,
    ...extra,
  });
  const classes = classifyNodes([
    record('a'),
    record('b', { draining: true }),
    record('c', { healthy: false }),
    record('d', { shedding: true }),
  ]);
  assert.deepEqual(
    classes.map((c) => [c.nodeId, c.shedding === true]),
    [
      ['a', false],
      ['d', true],
    ],
  );
});

test('a node that sheds load keeps the operators it runs and takes new ones only when its class has no other node', () => {
  const analysed = analyseGraph(sample);
  const cpuOps = (p: ReturnType<typeof planDeployment>) => p.ops.filter((o) => o.classId === 'cpu');
  // a is the least loaded cpu node, yet it sheds load: new cpu operators go to a2.
  const shedding: NodeClass = {
    nodeId: 'a',
    classId: 'cpu',
    modelled: false,
    load: 0,
    shedding: true,
    slots: 1,
  };
  const busier: NodeClass = { nodeId: 'a2', classId: 'cpu', modelled: false, load: 5, slots: 1 };
  const nodes = [shedding, busier, ...fleet.slice(1)];
  const fresh = cpuOps(planDeployment({ deployment: 'd', analysed, nodes }));
  assert.ok(fresh.length > 0);
  for (const o of fresh) assert.equal(o.node, 'a2', o.id);
  // Operators it already runs stay on it (a re-plan moves nothing off a node under pressure).
  const current = Object.fromEntries(fresh.map((o) => [o.id, 'a']));
  for (const o of cpuOps(planDeployment({ deployment: 'd', analysed, nodes, current })))
    assert.equal(o.node, 'a');
  // The class's only node still hosts them: shedding is a node's local defence, not a departure.
  const alone = cpuOps(planDeployment({ deployment: 'd', analysed, nodes: [shedding, ...fleet.slice(1)] }));
  for (const o of alone) assert.equal(o.node, 'a', o.id);
});
