// The fleet simulator's re-plan policy and the live coordinator's placement (planDeployment, what
// the coordinator runs on a deploy or a re-plan) decide the same on the same inputs: the same
// graph, the same device classes, no binding device counts, planning per request.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { analyseGraph, type NodeClass, planDeployment } from '@stitch/agents';
import { PAPER_CATALOG } from '@stitch/cost';
import { problemFromDemand } from '@stitch/planner';
import { replanOnUtilisation, type Snapshot } from '../packages/sim/dist/index.js';

const sample = (name: string) =>
  readFileSync(new URL(`../packages/ir/samples/${name}.mlir`, import.meta.url), 'utf8');

const FLEETS = [
  ['cpu', 'h100', 'gaudi3'],
  ['cpu', 'b200', 'mi300x'],
  ['cpu', 'b200', 'gaudi3', 'h100', 'mi300x'],
  ['cpu', 'a100-80g', 'a40'],
];
/** The tool agents carry `placement = "gpu"` on their LLM call; both sides keep those ops on accelerators. */
const GRAPHS = ['voice-agent.tiny-llama', 'tool-agent.llama3-8b'];
const CASES = GRAPHS.flatMap((graph) => FLEETS.map((classes) => ({ graph, classes })));

/** One node per class, as the coordinator sees live nodes (modelled accelerators, a real CPU). */
const nodesOf = (classes: string[]): NodeClass[] =>
  classes.map((classId, k) => ({ nodeId: `n${k}`, classId, modelled: classId !== 'cpu', load: 0, slots: 1 }));

/** A control period in which every class ran hot and the SLA slipped: the policy must re-plan. */
function hotSnapshot(graph: string, classes: string[], placement: string[]): Snapshot {
  const analysed = analyseGraph(sample(graph));
  // The simulator's fleet: the CLI's problem for a graph (demand rows × catalog) with counts too
  // large to bind, since a coordinator's nodes host any number of operators.
  const counts = Object.fromEntries(classes.map((c) => [c, 1_000_000]));
  return {
    timeS: 600,
    periodS: 10,
    problem: problemFromDemand(analysed.rows, { catalog: PAPER_CATALOG, classes, counts }),
    slaMs: analysed.slaMs,
    placement,
    arrivalRate: 5,
    utilisation: classes.map(() => 0.97),
    attainment: 0.5,
    queued: 40,
  };
}

describe('the simulator decides as the coordinator does', () => {
  for (const { graph, classes } of CASES) {
    it(`${graph} on ${classes.join('+')}`, () => {
      const live = planDeployment({
        deployment: 'd',
        analysed: analyseGraph(sample(graph)),
        nodes: nodesOf(classes),
        milp: null,
      });
      assert.equal(live.solver, 'heuristic');
      const liveClasses = live.ops.map((o) => o.classId);
      for (const o of live.ops) if (o.attrs.placement === 'gpu') assert.notEqual(o.classId, 'cpu', o.id);
      // The coordinator plans per request (no rate); headroom 0 makes the policy do the same.
      const policy = replanOnUtilisation({ headroom: 0 });
      const moved = policy(
        hotSnapshot(
          graph,
          classes,
          liveClasses.map(() => 'cpu'),
        ),
      );
      assert.ok(moved?.placement, 'a hot period away from the plan re-plans');
      assert.deepEqual([...moved.placement], liveClasses);
      assert.ok(new Set(liveClasses).size > 1, 'the plan uses more than one class');
      // Already where the coordinator would put it: nothing to migrate.
      assert.equal(policy(hotSnapshot(graph, classes, liveClasses)), null);
    });
  }
});
