import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { CorrectionTable, estimateOp, findDevice, PAPER_CATALOG } from '@stitch/cost';
import fc from 'fast-check';
import {
  type DemandRowLike,
  generateProblem,
  loadMilpSolver,
  type MilpSolver,
  type PlacementProblem,
  PlanError,
  type PlanFeasible,
  paretoFrontier,
  placementHintApplies,
  planExact,
  planHeuristic,
  planIncremental,
  problemFromDemand,
  problemFromProfile,
} from '../src/index.js';
import { globMatches } from '../src/input.js';

let milp: MilpSolver;
before(async () => {
  milp = await loadMilpSolver();
});

/**
 * Prefill → decode with a 4 ms KV transfer when they sit on different classes.
 * "flops" prefills in 20 ms, decodes in 60 ms; "bw" prefills in 70 ms, decodes in 15 ms.
 * Same class: 80 ms (flops) or 85 ms (bw). Split flops::bw: 20 + 4 + 15 = 39 ms; bw::flops: 134 ms.
 * A crossing holds one device at each end for the 4 ms: 4 · (3.6 + 1.8) = 21.6 (× 1/3.6e6 $).
 */
const splitProfile = {
  classes: [
    { id: 'flops', usd_per_hour: 3.6 },
    { id: 'bw', usd_per_hour: 1.8 },
  ],
  tasks: [
    { id: 'prefill', op: 'llm.prefill', time_ms: { flops: 20, bw: 70 } },
    { id: 'decode', op: 'llm.decode', deps: ['prefill'], time_ms: { flops: 60, bw: 15 } },
  ],
  edges: [{ from: 'prefill', to: 'decode', transfer_ms: 4 }],
};

const feasible = (r: ReturnType<typeof planHeuristic>): PlanFeasible => {
  assert.notEqual(r.status, 'infeasible', JSON.stringify(r));
  return r as PlanFeasible;
};

describe('hand-computed placements', () => {
  it('only the heterogeneous prefill/decode split meets a 50 ms SLA, for both solvers', () => {
    const problem = problemFromProfile(splitProfile);
    for (const r of [planExact(milp, problem, { slaMs: 50 }), planHeuristic(problem, { slaMs: 50 })]) {
      const f = feasible(r);
      assert.deepEqual(
        f.placements.map((p) => p.classId),
        ['flops', 'bw'],
      );
      assert.ok(Math.abs(f.latencyMs - 39) < 1e-9);
      // $ per request = Σ t · $/h / 3.6e6: 20 ms × 3.6 + 15 ms × 1.8, plus the crossing's link time.
      assert.ok(Math.abs(f.usdPerRequest - (20 * 3.6 + 15 * 1.8 + 21.6) / 3.6e6) < 1e-15);
      assert.ok(Math.abs(f.transferUsdPerRequest - 21.6 / 3.6e6) < 1e-15);
      assert.deepEqual(
        f.transfers.map((t) => [t.from, t.to, t.fromClass, t.toClass, t.ms]),
        [['prefill', 'decode', 'flops', 'bw', 4]],
      );
      assert.deepEqual(f.criticalPath, ['prefill', 'decode']);
    }
  });

  it('with a loose SLA picks the cheapest placement', () => {
    // Costs per request (×3.6e6): flops::flops 288, bw::bw 153, flops::bw 99 + 21.6, bw::flops 342 + 21.6.
    const problem = problemFromProfile(splitProfile);
    const f = feasible(planExact(milp, problem, { slaMs: 1000 }));
    assert.deepEqual(
      f.placements.map((p) => p.classId),
      ['flops', 'bw'],
    );
    const cheapBw = problemFromProfile({
      ...splitProfile,
      classes: [
        { id: 'flops', usd_per_hour: 36 },
        { id: 'bw', usd_per_hour: 1.8 },
      ],
    });
    const g = feasible(planExact(milp, cheapBw, { slaMs: 1000 }));
    assert.deepEqual(
      g.placements.map((p) => p.classId),
      ['bw', 'bw'],
    );
    assert.ok(Math.abs(g.latencyMs - 85) < 1e-9);
  });

  it('γ charges transfers: a costly KV hop makes colocation cheaper (paper cost_ij + γ·d_ij)', () => {
    // flops::bw costs (20·3.6 + 15·1.8 + 21.6)/3.6e6 = 3.35e-5 plus γ·4 ms; bw::bw costs 4.25e-5 and no hop.
    const problem = problemFromProfile(splitProfile);
    for (const r of [
      planExact(milp, problem, { slaMs: 1000, gamma: 1e-5 }),
      planHeuristic(problem, { slaMs: 1000, gamma: 1e-5 }),
    ]) {
      const f = feasible(r);
      assert.deepEqual(
        f.placements.map((p) => p.classId),
        ['bw', 'bw'],
      );
      assert.ok(Math.abs(f.usdPerRequest - (85 * 1.8) / 3.6e6) < 1e-15);
    }
    const cheapHop = feasible(planExact(milp, problem, { slaMs: 1000, gamma: 1e-7 }));
    assert.ok(Math.abs(cheapHop.usdPerRequest - ((20 * 3.6 + 15 * 1.8 + 21.6) / 3.6e6 + 4e-7)) < 1e-15);
  });

  it('sizes replicas for a target rate and charges $/h', () => {
    // At 100 req/s: prefill on flops needs ceil(100 · 0.020) = 2 replicas, decode on bw ceil(1.5) = 2;
    // crossings hold 100 · 4 ms = 0.4 devices busy at each end: 0.4 · (3.6 + 1.8) = 2.16 $/h.
    const f = feasible(planExact(milp, problemFromProfile(splitProfile), { slaMs: 50, rate: 100 }));
    assert.deepEqual(
      f.placements.map((p) => p.devices),
      [2, 2],
    );
    assert.ok(Math.abs(f.usdPerHour! - (2 * 3.6 + 2 * 1.8 + 2.16)) < 1e-12);
    assert.ok(Math.abs(f.transferUsdPerRequest - 21.6 / 3.6e6) < 1e-15);
    assert.ok(Math.abs(f.usdPerRequest - f.usdPerHour! / 3600 / 100) < 1e-15);
  });

  it('a shared rate fills each class by the device time its tasks use, and cost stays per request', () => {
    const counts: Record<string, number> = { flops: 1, bw: 5 };
    const one = problemFromProfile({
      ...splitProfile,
      classes: splitProfile.classes.map((c) => ({ ...c, count: counts[c.id] })),
    });
    for (const plan of [
      (o: { slaMs: number; sharedRate: number }) => planExact(milp, one, o),
      (o: { slaMs: number; sharedRate: number }) => planHeuristic(one, o),
    ]) {
      // 10 req/s: the cheapest split keeps flops busy 10 · 20 ms = 0.2 and bw 10 · 15 ms = 0.15 of the time.
      const light = feasible(plan({ slaMs: 1000, sharedRate: 10 }));
      assert.deepEqual(
        light.placements.map((p) => [p.classId, Number(p.devices.toFixed(9))]),
        [
          ['flops', 0.2],
          ['bw', 0.15],
        ],
      );
      assert.ok(Math.abs(light.usdPerRequest - (20 * 3.6 + 15 * 1.8 + 21.6) / 3.6e6) < 1e-15);
      // 55 req/s: prefill would need 1.1 flops devices of one; both go to bw (55 · 85 ms = 4.675 of 5).
      const busy = feasible(plan({ slaMs: 1000, sharedRate: 55 }));
      assert.deepEqual(
        busy.placements.map((p) => p.classId),
        ['bw', 'bw'],
      );
      for (const u of busy.classUse) assert.ok(u.devices <= counts[u.classId]! + 1e-9, JSON.stringify(u));
      // 70 req/s: 1.4 flops or 5.95 bw.
      const over = plan({ slaMs: 1000, sharedRate: 70 });
      assert.equal(over.status, 'infeasible');
      if (over.status === 'infeasible') assert.equal(over.binding, 'capacity');
    }
    assert.throws(
      () => planHeuristic(one, { slaMs: 1000, sharedRate: 10, rate: 10 }),
      (e: unknown) => e instanceof PlanError && /exclude each other/.test(e.message),
    );
  });
});

describe('transfers have a price', () => {
  // Per request (×3.6e6): bw::bw 153 and no crossing; flops::bw 99 for the ops plus the crossing.
  const priced = (classes: object[], edge: object) =>
    problemFromProfile({ ...splitProfile, classes, edges: [{ from: 'prefill', to: 'decode', ...edge }] });
  const flops = { id: 'flops', usd_per_hour: 3.6 };
  const bw = { id: 'bw', usd_per_hour: 1.8 };
  const placed = (p: PlacementProblem) => [
    feasible(planExact(milp, p, { slaMs: 1000 })),
    feasible(planHeuristic(p, { slaMs: 1000 })),
  ];

  it('egress per GB flips the loose-SLA optimum from the split to colocation', () => {
    // 1 GB leaves flops at $1e-5/GB = 36: 99 + 21.6 + 36 = 156.6 > 153, so bw::bw wins.
    for (const f of placed(
      priced([{ ...flops, egress_usd_per_gb: 1e-5 }, bw], { bytes: 1e9, transfer_ms: 4 }),
    )) {
      assert.deepEqual(
        f.placements.map((p) => p.classId),
        ['bw', 'bw'],
      );
      assert.ok(Math.abs(f.usdPerRequest - 153 / 3.6e6) < 1e-15);
      assert.deepEqual(f.transfers, []);
    }
    // At $5e-6/GB (18): 99 + 21.6 + 18 = 138.6 < 153, the split stays.
    for (const f of placed(
      priced([{ ...flops, egress_usd_per_gb: 5e-6 }, bw], { bytes: 1e9, transfer_ms: 4 }),
    )) {
      assert.deepEqual(
        f.placements.map((p) => p.classId),
        ['flops', 'bw'],
      );
      assert.ok(Math.abs(f.usdPerRequest - 138.6 / 3.6e6) < 1e-15);
      assert.ok(Math.abs(f.transferUsdPerRequest - 39.6 / 3.6e6) < 1e-15);
    }
  });

  it("a profile's fixed usd_per_transfer replaces the modelled price, in both solvers and planIncremental", () => {
    // $1e-5 = 36: 99 + 36 = 135 < 153 (split); $2e-5 = 72: 171 > 153 (colocate on bw).
    const cheap = priced([flops, bw], { transfer_ms: 4, usd_per_transfer: 1e-5 });
    const dear = priced([flops, bw], { transfer_ms: 4, usd_per_transfer: 2e-5 });
    for (const f of placed(cheap)) {
      assert.deepEqual(
        f.placements.map((p) => p.classId),
        ['flops', 'bw'],
      );
      assert.ok(Math.abs(f.usdPerRequest - 135 / 3.6e6) < 1e-15);
    }
    for (const f of placed(dear)) {
      assert.deepEqual(
        f.placements.map((p) => p.classId),
        ['bw', 'bw'],
      );
    }
    const before = feasible(planHeuristic(cheap, { slaMs: 1000 }));
    const after = planIncremental({ problem: cheap, placement: ['flops', 'bw'] }, dear, { slaMs: 1000 });
    assert.equal(after.fullReplan, false);
    assert.deepEqual(
      feasible(after).placements.map((p) => p.classId),
      ['bw', 'bw'],
    );
    assert.ok(Math.abs(feasible(after).usdPerRequest - 153 / 3.6e6) < 1e-15);
    assert.ok(feasible(after).usdPerRequest < before.usdPerRequest * (171 / 135));
  });

  it('rejects a negative transfer price or egress', () => {
    for (const [classes, edge] of [
      [[{ ...flops, egress_usd_per_gb: -1 }, bw], { transfer_ms: 4 }],
      [[flops, bw], { transfer_ms: 4, usd_per_transfer: -1 }],
    ] as const) {
      assert.throws(() => priced([...classes], edge), PlanError);
    }
  });
});

describe('infeasibility is a result naming the binding constraint', () => {
  it('SLA below the best achievable latency reports that latency', () => {
    const problem = problemFromProfile(splitProfile);
    const r = planExact(milp, problem, { slaMs: 30 });
    assert.equal(r.status, 'infeasible');
    if (r.status !== 'infeasible') return;
    assert.equal(r.binding, 'sla');
    assert.ok(Math.abs(r.bestLatencyMs! - 39) < 1e-6);
    const h = planHeuristic(problem, { slaMs: 30 });
    assert.equal(h.status, 'infeasible');
    if (h.status === 'infeasible') assert.ok(h.bestLatencyMs! >= 39 - 1e-9);
  });

  it('device counts too small for the rate → capacity', () => {
    const limited = { ...splitProfile, classes: splitProfile.classes.map((c) => ({ ...c, count: 1 })) };
    const problem = problemFromProfile(limited);
    for (const r of [
      planExact(milp, problem, { slaMs: 500, rate: 200 }),
      planHeuristic(problem, { slaMs: 500, rate: 200 }),
    ]) {
      assert.equal(r.status, 'infeasible');
      if (r.status === 'infeasible') assert.equal(r.binding, 'capacity');
    }
  });

  it('a task no class can run → placement, naming the task', () => {
    const p = {
      ...splitProfile,
      tasks: [...splitProfile.tasks, { id: 'tts', deps: ['decode'], time_ms: {} }],
    };
    const r = planHeuristic(problemFromProfile(p), { slaMs: 100 });
    assert.equal(r.status, 'infeasible');
    if (r.status === 'infeasible') {
      assert.equal(r.binding, 'placement');
      assert.equal(r.task, 'tts');
    }
  });

  it('a soft SLA (finite λ) trades slack for cost', () => {
    const problem = problemFromProfile(splitProfile);
    const f = feasible(planExact(milp, problem, { slaMs: 30, lambda: 1e-12 }));
    assert.ok(f.slackMs > 0);
    assert.ok(f.latencyMs > 30);
  });
});

describe('inputs', () => {
  it('rejects bad profiles and cycles with PLAN_INPUT', () => {
    assert.throws(
      () => problemFromProfile({ classes: [], tasks: [] }),
      (e: unknown) => e instanceof PlanError && e.code === 'PLAN_INPUT',
    );
    assert.throws(
      () => problemFromProfile({ ...splitProfile, tasks: [{ id: 'a', time_ms: { flops: -1 } }] }),
      /profile\.tasks\[0\]\.time_ms\.flops must be/,
    );
    const cyclic = {
      ...splitProfile,
      tasks: [
        { id: 'a', deps: ['b'], time_ms: { flops: 1 } },
        { id: 'b', deps: ['a'], time_ms: { flops: 1 } },
      ],
      edges: [],
    };
    assert.throws(() => planHeuristic(problemFromProfile(cyclic), { slaMs: 10 }), /cycle/);
  });

  it('derives times from demand rows with the cost model and keeps host ops on CPUs', () => {
    const demand = { flops: 2e12, bytesRead: 16e9, bytesWritten: 1e6, memoryBytes: 16e9, networkBytes: 1e6 };
    const rows: DemandRowLike[] = [
      {
        id: 'q',
        op: 'tool.invoke',
        kind: 'tool',
        demand: { ...demand, flops: 1e6, bytesRead: 1e3, memoryBytes: 0 },
        deps: [],
        edgeBytes: {},
        attrs: { latency_ms: 30 },
      },
      { id: 'p', op: 'llm.prefill', kind: 'llm', demand, deps: ['q'], edgeBytes: { q: 4096 }, attrs: {} },
    ];
    const problem = problemFromDemand(rows, { catalog: PAPER_CATALOG, classes: ['h100', 'cpu'] });
    assert.equal(problem.timeMs[0]![0], Infinity);
    assert.ok(problem.timeMs[0]![1]! >= 30);
    assert.equal(problem.timeMs[1]![0], estimateOp(demand, findDevice(PAPER_CATALOG, 'h100')).ms);
    assert.equal(problem.classes[0]!.modelled, true);
    assert.equal(problem.classes[1]!.modelled, false);
    const f = feasible(planHeuristic(problem, { slaMs: 1000 }));
    assert.equal(f.placements[0]!.classId, 'cpu');
  });
  /** A small matmul row with placement hint `placement`, if any. */
  const hinted = (id: string, placement?: string): DemandRowLike => ({
    id,
    op: 'nn.matmul',
    kind: 'nn',
    demand: { flops: 1e9, bytesRead: 1e6, bytesWritten: 1e3, memoryBytes: 1e6, networkBytes: 0 },
    deps: [],
    edgeBytes: {},
    attrs: placement ? { placement } : {},
  });

  it('placement hints: a class id or kind pins the op; a hint naming no class here is ignored', () => {
    const rows = [
      hinted('a', 'gpu'),
      hinted('b', 'cpu'),
      hinted('c', 'h100'),
      hinted('d', 'tpu-v9'),
      hinted('e'),
    ];
    const p = problemFromDemand(rows, { catalog: PAPER_CATALOG, classes: ['h100', 'gaudi3', 'cpu'] });
    const runnable = p.timeMs.map((t) => t.map((v) => Number.isFinite(v)));
    assert.deepEqual(runnable, [
      [true, true, false],
      [false, false, true],
      [true, false, false],
      [true, true, true],
      [true, true, true],
    ]);
  });

  it('placement hints list alternatives ("a|b") and patterns ("a100*"); one past its bounds is ignored', () => {
    const classes = ['a40', 'a100-80g', 'h100', 'gaudi3', 'cpu'];
    const hints = [
      'a100-80g | a40',
      'a100*',
      '*100*',
      'gaudi3|tpu-v9',
      'h100|cpu',
      'gpu|cpu',
      'tpu-*',
      'h100||a40',
      Array(17).fill('h100').join('|'),
      `h100|${'x'.repeat(256)}`,
    ];
    const p = problemFromDemand(
      hints.map((h, i) => hinted(`r${i}`, h)),
      { catalog: PAPER_CATALOG, classes },
    );
    const runnable = p.timeMs.map((t) => classes.filter((_, j) => Number.isFinite(t[j])).join(' '));
    const everywhere = classes.join(' ');
    assert.deepEqual(runnable, [
      'a40 a100-80g',
      'a100-80g',
      'a100-80g h100',
      'gaudi3',
      'h100 cpu',
      everywhere,
      // Names no class here: left to the planner, like an unknown class id.
      everywhere,
      // An empty alternative, more than 16 or a hint over 256 characters name nothing.
      everywhere,
      everywhere,
      everywhere,
    ]);
    assert.ok(placementHintApplies('h100|gaudi*', [findDevice(PAPER_CATALOG, 'gaudi3')]));
    assert.ok(!placementHintApplies('h100|a100*', [findDevice(PAPER_CATALOG, 'gaudi3')]));
  });

  it('a pattern matches as a glob, in time linear in its length', () => {
    assert.ok(globMatches('a*c', 'abbbc'));
    assert.ok(globMatches('*', ''));
    assert.ok(globMatches('a*', 'a'));
    assert.ok(!globMatches('a*c', 'abbbd'));
    assert.ok(!globMatches('a.c', 'abc'), 'a dot is a dot');
    assert.ok(globMatches('*a*b', 'xaxxab'));
    // Stars a backtracking regular expression would take exponential time on: answered at once.
    assert.ok(!globMatches(`${'*a'.repeat(120)}*b`, 'a'.repeat(4000)));
  });

  it('measured corrections move ops: a slow-measured class loses its ops', () => {
    const demand = { flops: 4e13, bytesRead: 16e9, bytesWritten: 1e6, memoryBytes: 16e9, networkBytes: 0 };
    const rows: DemandRowLike[] = [
      { id: 'p', op: 'llm.prefill', kind: 'llm', demand, deps: [], edgeBytes: {}, attrs: {} },
    ];
    const opts = { catalog: PAPER_CATALOG, classes: ['h100', 'gaudi3'] };
    const before = feasible(planHeuristic(problemFromDemand(rows, opts), { slaMs: 1000 }));
    const chosen = before.placements[0]!.classId;
    const correction = new CorrectionTable();
    correction.observe('llm', chosen, 10, 100);
    const after = feasible(planHeuristic(problemFromDemand(rows, { ...opts, correction }), { slaMs: 1000 }));
    assert.notEqual(after.placements[0]!.classId, chosen);
    assert.ok(
      Math.abs(
        correction.apply('llm', chosen, before.placements[0]!.timeMs) - before.placements[0]!.timeMs * 10,
      ) < 1e-9,
    );
  });

  it("an op measured apart from its kind moves alone when the deployment's corrections apply", () => {
    const demand = { flops: 4e13, bytesRead: 16e9, bytesWritten: 1e6, memoryBytes: 16e9, networkBytes: 0 };
    const row = (id: string): DemandRowLike => ({
      id,
      op: 'llm.prefill',
      kind: 'llm',
      demand,
      deps: [],
      edgeBytes: {},
      attrs: {},
    });
    const rows = [row('p'), row('q')];
    const opts = { catalog: PAPER_CATALOG, classes: ['h100', 'gaudi3'] };
    const classes = (o: Parameters<typeof problemFromDemand>[1]) =>
      feasible(planHeuristic(problemFromDemand(rows, o), { slaMs: 1000 })).placements.map((x) => x.classId);
    const [chosen] = classes(opts);
    const correction = new CorrectionTable();
    for (let k = 0; k < 3; k++) {
      correction.observe('llm', chosen!, 10, 100, { deployment: 'chat', op: 'p' });
      correction.observe('llm', chosen!, 10, 10, { deployment: 'chat', op: 'q' });
    }
    const own = classes({ ...opts, correction, correctionDeployment: 'chat' });
    assert.notEqual(own[0], chosen, 'p, measured 10x slow there, leaves');
    assert.equal(own[1], chosen, 'q, measured as estimated, stays');
    // Another deployment's ops (or none named) share the kind's factor, and so the same class.
    for (const o of [
      { ...opts, correction },
      { ...opts, correction, correctionDeployment: 'other' },
    ]) {
      const [a, b] = classes(o);
      assert.equal(a, b);
    }
  });
});

describe('heuristic against the exact MILP', () => {
  it('never beats the optimum and always meets the SLA (generated problems)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 4, max: 14 }),
        fc.integer({ min: 2, max: 5 }),
        fc.constantFrom(0, 1e-8),
        (seed, ops, classes, gamma) => {
          const { problem, slaMs } = generateProblem({ ops, classes, seed });
          const exact = planExact(milp, problem, { slaMs, timeLimitS: 20, gamma });
          const fast = planHeuristic(problem, { slaMs, gamma });
          if (exact.status === 'infeasible') return fast.status === 'infeasible';
          if (fast.status === 'infeasible') return false;
          // The MILP placement, re-timed by the schedule code, must meet the SLA too (linearisation check).
          if (exact.latencyMs > slaMs + 1e-6) return false;
          return fast.latencyMs <= slaMs + 1e-6 && fast.usdPerRequest >= exact.usdPerRequest * (1 - 1e-6);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('Pareto frontier: cost falls as latency rises', () => {
    // Priced crossings make some instances' cheapest plan also their fastest (a one-point
    // frontier), so several instances are drawn and most must trade cost for latency.
    let traded = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const { problem }: { problem: PlacementProblem } = generateProblem({ ops: 30, classes: 6, seed });
      const pts = paretoFrontier(problem, { points: 6 });
      assert.ok(pts.length >= 1, `seed ${seed}`);
      if (pts.length >= 2) traded++;
      const sorted = [...pts].sort((a, b) => a.latencyMs - b.latencyMs);
      for (let k = 1; k < sorted.length; k++)
        assert.ok(sorted[k]!.cost < sorted[k - 1]!.cost, `seed ${seed}`);
    }
    assert.ok(traded >= 4, `only ${traded} of 8 frontiers have two points or more`);
  });
});
