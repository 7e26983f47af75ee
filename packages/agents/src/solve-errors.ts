// Errors crossing the solver pool's thread boundary: structured clone keeps an Error's message but
// not its class or `code`, and callers (and the clients behind the coordinator actor) branch on both.
import { CostError, type CostErrorCode } from '@stitch/cost';
import { type Diagnostic, IrError, type IrErrorCode } from '@stitch/ir';
import { PlanError, type PlanErrorCode } from '@stitch/planner';
import { AgentsError, type AgentsErrorCode } from './errors.js';

export type WireError =
  | { kind: 'ir'; code: IrErrorCode; diagnostics: Diagnostic[]; file: string }
  | { kind: 'agents'; code: AgentsErrorCode; message: string }
  | { kind: 'plan'; code: PlanErrorCode; message: string }
  | { kind: 'cost'; code: CostErrorCode; message: string }
  | { kind: 'other'; name: string; message: string };

export function toWire(err: unknown): WireError {
  if (err instanceof IrError)
    return { kind: 'ir', code: err.code, diagnostics: [...err.diagnostics], file: err.file };
  if (err instanceof AgentsError) return { kind: 'agents', code: err.code, message: err.message };
  if (err instanceof PlanError) return { kind: 'plan', code: err.code, message: err.message };
  if (err instanceof CostError) return { kind: 'cost', code: err.code, message: err.message };
  const e = err as { name?: unknown; message?: unknown } | null;
  return {
    kind: 'other',
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

export function fromWire(w: WireError): Error {
  switch (w.kind) {
    case 'ir':
      return new IrError(w.code, w.diagnostics, w.file);
    case 'agents':
      return new AgentsError(w.code, w.message);
    case 'plan':
      return new PlanError(w.code, w.message);
    case 'cost':
      return new CostError(w.code, w.message);
    default: {
      const e = new Error(w.message);
      e.name = w.name;
      return e;
    }
  }
}
