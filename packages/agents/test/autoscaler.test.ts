import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findDevice, PAPER_CATALOG } from '@stitch/cost';
import type { NodeInspection } from '@stitch/runtime';
import {
  classRoom,
  criticalPathMs,
  freeSlotsByNode,
  LoadSampler,
  nodeForMove,
  nodesForReplicas,
  observeDeployment,
} from '../src/autoscaler.js';
import type { Deployment } from '../src/deployment.js';
import type { NodeClass, PlacedOp } from '../src/placement.js';

/** One node's inspection with one actor per [id, accepted, processed, busyMs, depth, shed?]. */
function inspection(
  nodeId: string,
  actors: [string, number, number, number, number, number?][],
): NodeInspection {
  return {
    nodeId,
    actors: actors.map(([id, accepted, processed, busyMs, depth, shed]) => ({
      type: 'op-llm',
      id,
      nodeId,
      epoch: 1,
      status: 'running',
      restarts: 0,
      durable: { delivered: 0, redelivered: 0, duplicatesSkipped: 0 },
      mailbox: {
        depth,
        running: 0,
        maxDepth: depth,
        accepted,
        processed,
        rejected: 0,
        ...(shed === undefined ? {} : { shed }),
        busyMs,
        turnMs: { p50: 0, p99: 0, max: 0 },
        waitMs: { p50: 0, p99: 0, max: 0 },
      },
    })),
  };
}

const op = (replicas: { actorId: string; node: string }[] = []): PlacedOp => ({
  id: 'decode',
  op: 'llm.decode',
  kind: 'llm',
  deps: [],
  attrs: {},
  actorType: 'op-llm',
  actorId: 'd',
  classId: 'gaudi3',
  modelled: true,
  node: 'a',
  estimatedMs: 70,
  usdPerRequest: 0,
  ...(replicas.length ? { replicas } : {}),
});

test("the time turns waited for a device slot is not counted as the op's own work", () => {
  const s = new LoadSampler(1000);
  s.sample([inspection('a', [['d', 0, 0, 0, 0]])], 0);
  const waited = inspection('a', [['d', 10, 10, 1500, 0]]);
  waited.actors[0]!.slotWaitMs = 800;
  const delta = s.sample([waited], 1000)!.deltas.get('op-llm/d')!;
  assert.equal(delta.busyMs, 700);
  // The wait is its own figure: 80 ms per request, longer than the 70 of work (a full device).
  assert.equal(delta.slotWaitMs, 800);
  const d = { ops: [op()], slaMs: 1000, latencyMs: 0, usdPerHour: {}, rawMs: {} } as unknown as Deployment;
  const [o] = observeDeployment(d, new Map([['op-llm/d', delta]]), 1000);
  assert.equal(o?.slotWaitMs, 80);
});

test("an alternative class carries the change in the op's edges to its neighbours where they run", () => {
  // prefill (cpu) → decode (gaudi3) → detok (cpu); 2 GB of KV cache into decode, 1 MB out of it.
  const decode = { ...op(), deps: ['prefill'], edgeBytes: { prefill: 2e9 } };
  const neighbour = (id: string, deps: string[], edgeBytes?: Record<string, number>): PlacedOp => ({
    ...op(),
    id,
    deps,
    ...(edgeBytes ? { edgeBytes } : {}),
    classId: 'cpu',
  });
  const d = {
    ops: [neighbour('prefill', []), decode, neighbour('detok', ['decode'], { decode: 1e6 })],
    slaMs: 1000,
    latencyMs: 600,
    usdPerHour: { gaudi3: 2, h100: 6, cpu: 0.1 },
    rawMs: { decode: { gaudi3: 70, h100: 40, cpu: 400 } },
  } as unknown as Deployment;
  const [, o] = observeDeployment(d, new Map(), 1000, new Set(['gaudi3', 'h100', 'cpu']));
  const link = (id: string) => findDevice(PAPER_CATALOG, id).link.scaleOutGBps;
  const crossing = (a: string, b: string, bytes: number) =>
    (bytes / (Math.min(link(a), link(b)) * 1e9)) * 1e3;
  const now = crossing('gaudi3', 'cpu', 2e9) + crossing('gaudi3', 'cpu', 1e6);
  const at = (id: string) => o!.alternatives!.find((a) => a.classId === id)!.transferMs!;
  // On cpu, beside both neighbours, the edges take nothing: the move saves all they take now.
  assert.ok(now > 0);
  assert.ok(Math.abs(at('cpu') + now) < 1e-9);
  const h100 = crossing('h100', 'cpu', 2e9) + crossing('h100', 'cpu', 1e6);
  assert.ok(Math.abs(at('h100') - (h100 - now)) < 1e-9);
  // A record whose bytes are not counts (input from KV) carries no transfer for them.
  const bad = {
    ...d,
    ops: [d.ops[0], { ...decode, edgeBytes: { prefill: 'x' } }, d.ops[2]],
  } as unknown as Deployment;
  const [, b] = observeDeployment(bad, new Map(), 1000, new Set(['gaudi3', 'cpu']));
  assert.ok(Math.abs(b!.alternatives![0]!.transferMs! + crossing('gaudi3', 'cpu', 1e6)) < 1e-9);
});

test('the sampler gives deltas over its window; a restarted activation counts from zero', () => {
  const s = new LoadSampler(2000);
  assert.equal(s.sample([inspection('a', [['d', 10, 10, 700, 0]])], 0), undefined);
  // Until the samples span a whole window there is nothing to act on: an op just deployed has had its
  // first request or two in a few hundred ms, a rate no load has.
  assert.equal(s.sample([inspection('a', [['d', 20, 18, 1260, 2]])], 1000), undefined);
  const two = s.sample([inspection('a', [['d', 30, 28, 1960, 2]])], 2000)!;
  assert.equal(two.dtMs, 2000);
  assert.deepEqual(two.deltas.get('op-llm/d'), {
    node: 'a',
    arrived: 20,
    processed: 18,
    busyMs: 1260,
    slotWaitMs: 0,
    depth: 2,
    shed: 0,
  });
  // Past it: the base moves up to the newest sample at least a window old.
  const three = s.sample([inspection('a', [['d', 40, 38, 2660, 2]])], 3500)!;
  assert.equal(three.dtMs, 2500);
  // The activation restarted (its counters went back): its new counters are the delta.
  const four = s.sample([inspection('a', [['d', 3, 3, 210, 0]])], 4500)!;
  assert.equal(four.deltas.get('op-llm/d')!.arrived, 3);
});

test('observations add up every replica of an op; free slots are the slots less the busy time', () => {
  const deployment = {
    ops: [op([{ actorId: 'd-r1', node: 'b' }])],
    slaMs: 1000,
    latencyMs: 600,
    usdPerHour: { gaudi3: 2, h100: 6, cpu: 0.1, b200: 9 },
    // The plan's estimate on gaudi3 (70 ms) is twice the raw one: the other classes' scale the same.
    // b200 may not run it (a hint, or its kind): Infinity in the plan, null once the record went
    // through JSON.
    rawMs: { decode: { gaudi3: 35, h100: 20, cpu: 400, b200: null } },
  } as unknown as Deployment;
  const s = new LoadSampler(1000);
  s.sample([inspection('a', [['d', 0, 0, 0, 0]]), inspection('b', [['d-r1', 0, 0, 0, 0]])], 0);
  const { deltas, dtMs } = s.sample(
    [inspection('a', [['d', 10, 10, 700, 3]]), inspection('b', [['d-r1', 8, 8, 560, 1]])],
    1000,
  )!;
  // cpu has no live node now: it is no alternative; nor is b200.
  const [o] = observeDeployment(deployment, deltas, dtMs, new Set(['gaudi3', 'h100', 'b200']));
  assert.deepEqual(o, {
    opId: 'decode',
    classId: 'gaudi3',
    replicas: 2,
    servingReplicas: 2,
    arrivalPerS: 18,
    serviceMs: 70,
    queueDepth: 4,
    slotWaitMs: 0,
    pinned: false,
    usdPerHour: 2,
    // No edges to other ops: a move changes no transfer.
    alternatives: [{ classId: 'h100', serviceMs: 40, usdPerHour: 6, transferMs: 0 }],
    // Its own estimate plus the graph's 400 ms of slack under the SLA.
    budgetMs: 470,
  });
  const nodes: NodeClass[] = ['a', 'b', 'c'].map((nodeId) => ({
    nodeId,
    classId: 'gaudi3',
    modelled: true,
    load: 0,
    slots: 2,
  }));
  // a: 0.7 of a slot busy → 1.3 free; b: 0.56 → 1.44; c: idle → 2.
  const free = freeSlotsByNode(nodes, deltas, dtMs);
  assert.deepEqual(
    [...free].map(([n, f]) => [n, Math.round(f * 100) / 100]),
    [
      ['a', 1.3],
      ['b', 1.44],
      ['c', 2],
    ],
  );
  // A node that sheds load has no room for a replica or a moved operator, whatever its slots say.
  const calmAndShedding = nodes.map((n) => (n.nodeId === 'c' ? { ...n, shedding: true } : n));
  assert.equal(freeSlotsByNode(calmAndShedding, deltas, dtMs).get('c'), 0);
  // Whole slots for replicas, summed; the largest share of one node for a move.
  assert.deepEqual(classRoom(nodes, free), { slots: { gaudi3: 4 }, share: { gaudi3: 2 } });
  // A move goes to the node of the class with the most free slots.
  assert.equal(nodeForMove(nodes, free, 'gaudi3', 0.5, new Set())?.nodeId, 'c');
  // One that already hosts the deployment first, if it has the room.
  assert.equal(nodeForMove(nodes, free, 'gaudi3', 0.5, new Set(['a']))?.nodeId, 'a');
  // a lacks the room for 1.4 slots: the freest of the others.
  assert.equal(nodeForMove(nodes, free, 'gaudi3', 1.4, new Set(['a']))?.nodeId, 'c');
  assert.equal(nodeForMove(nodes, free, 'h100', 0.1, new Set()), undefined);
});

test('a replica that refused messages (its node sheds load) counts for the share it took; one not seen counts whole', () => {
  const deployment = {
    ops: [
      op([
        { actorId: 'd-r1', node: 'b' },
        { actorId: 'd-r2', node: 'c' },
      ]),
    ],
    slaMs: 1000,
    latencyMs: 0,
    usdPerHour: {},
    rawMs: {},
  } as unknown as Deployment;
  const s = new LoadSampler(1000);
  // b's counters came from a node of an earlier version: no shed count.
  s.sample([inspection('a', [['d', 0, 0, 0, 0, 0]]), inspection('b', [['d-r1', 0, 0, 0, 0]])], 0);
  const { deltas, dtMs } = s.sample(
    [inspection('a', [['d', 2, 2, 140, 0, 18]]), inspection('b', [['d-r1', 20, 20, 1400, 0]])],
    1000,
  )!;
  assert.equal(deltas.get('op-llm/d')!.shed, 18);
  assert.equal(deltas.get('op-llm/d-r1')!.shed, 0);
  // d took 2 of 20 (0.1), d-r1 all it got (1), d-r2's node did not answer (1).
  const [o] = observeDeployment(deployment, deltas, dtMs);
  assert.equal(o?.replicas, 3);
  assert.ok(Math.abs(o!.servingReplicas! - 2.1) < 1e-9, String(o?.servingReplicas));
  // What it refused is not counted as arrived (callers traded it to a replica that counts it).
  assert.equal(o?.arrivalPerS, 22);
  // A replica on a node that sheds now serves nobody, whether it was asked this round or not.
  const [idle] = observeDeployment(deployment, new Map(), dtMs, new Set(), new Set(['c']));
  assert.equal(idle?.servingReplicas, 2);
  const [both] = observeDeployment(deployment, deltas, dtMs, new Set(), new Set(['a', 'c']));
  assert.equal(both?.servingReplicas, 1);
  // A shed count that went back (a restarted activation) counts from zero.
  const next = s.sample(
    [inspection('a', [['d', 3, 3, 210, 0, 1]]), inspection('b', [['d-r1', 21, 21, 1470, 0]])],
    2000,
  )!;
  assert.deepEqual(
    { arrived: next.deltas.get('op-llm/d')!.arrived, shed: next.deltas.get('op-llm/d')!.shed },
    { arrived: 3, shed: 1 },
  );
});

test('new replicas go to nodes of the class without one first, then by free slots, never past them', () => {
  const nodes: NodeClass[] = [
    { nodeId: 'a', classId: 'gaudi3', modelled: true, load: 0, slots: 2 },
    { nodeId: 'b', classId: 'gaudi3', modelled: true, load: 0, slots: 2 },
    { nodeId: 'h', classId: 'h100', modelled: true, load: 0, slots: 4 },
  ];
  const free = new Map([
    ['a', 1.5],
    ['b', 2],
    ['h', 4],
  ]);
  // b first (it runs none of the op), then a and b tie (one each, one slot free each); then a has
  // half a slot left, which no replica can take.
  assert.deepEqual(nodesForReplicas(op(), 4, nodes, free), ['b', 'a', 'b']);
  assert.deepEqual(
    [...free],
    [
      ['a', 0.5],
      ['b', 0],
      ['h', 4],
    ],
  );
});

test('the critical path is the longest chain of estimates through the dependencies', () => {
  const at = (id: string, ms: number, deps: string[]) => ({ ...op(), id, estimatedMs: ms, deps });
  // a(10) → b(30) → d(5); a → c(50) → d: 10 + 50 + 5.
  const ops = [at('a', 10, []), at('b', 30, ['a']), at('c', 50, ['a']), at('d', 5, ['b', 'c'])];
  assert.equal(criticalPathMs(ops), 65);
  // A record from KV with a cycle or a missing dependency still gives a number.
  assert.equal(criticalPathMs([at('x', 5, ['y']), at('y', 7, ['x']), at('z', 1, ['nowhere'])]), 12);
});
