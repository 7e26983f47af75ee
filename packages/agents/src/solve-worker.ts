// A solver pool thread: parses and analyses deployments and plans placements (HiGHS and the
// heuristic), so the coordinator's event loop never runs a solve. Loaded by piscina (solver-pool.ts).
import { CorrectionTable } from '@stitch/cost';
import { analyseGraph, milpSolver, type PlanInput, planDeployment } from './placement.js';
import { toWire, type WireError } from './solve-errors.js';

/** A PlanInput as plain data: the correction table as its snapshot, the MILP as a yes/no. */
export type PlanTaskInput = Omit<PlanInput, 'correction' | 'milp'> & {
  correction?: ReturnType<CorrectionTable['snapshot']>;
  milp: boolean;
};

export type SolveTask = { kind: 'analyse'; mlir: string } | { kind: 'plan'; input: PlanTaskInput };
export type SolveResult = { ok: true; value: unknown } | { ok: false; error: WireError };

export default async function solve(task: SolveTask): Promise<SolveResult> {
  try {
    if (task.kind === 'analyse') return { ok: true, value: analyseGraph(task.mlir) };
    const { correction, milp, ...input } = task.input;
    return {
      ok: true,
      value: planDeployment({
        ...input,
        ...(correction ? { correction: CorrectionTable.restore(correction) } : {}),
        milp: milp ? await milpSolver() : null,
      }),
    };
  } catch (err) {
    return { ok: false, error: toWire(err) };
  }
}
