import { findModel, type ModelFacts } from '@stitch/models';
import { type Attrs, int, intAttr, strAttr } from '../attrs.js';
import { IrError, IrErrorCode } from '../errors.js';
import { makeOp, type Op, type Value } from '../graph.js';
import { LLM_DTYPE } from '../llm-cost.js';
import type { DecomposeContext, DecomposeOptions } from '../registry.js';
import { KV_CACHE, tensorType } from '../types.js';

const CALL_ONLY = new Set(['prompt_tokens', 'max_tokens', 'tp', 'ep', 'layer_groups']);

/** Largest tensor- or expert-parallel degree, and most layer groups, a call may be split into. */
const MAX_SPLIT = 64;

/** How a call is split; an unset field is not checked. */
export interface Split {
  readonly tp: number | undefined;
  readonly ep: number | undefined;
  readonly layerGroups: number | undefined;
}

/**
 * Problems with a split, each naming its setting as `label` spells it. A call's attributes (at
 * verify) and the pass options (at decompose) obey the same rules: the ops built grow with
 * tp · ep · layer groups, and a tp must divide the model's heads.
 */
export function splitProblems(
  split: Split,
  model: ModelFacts | undefined,
  label: (key: keyof Split) => string,
): string[] {
  const out: string[] = [];
  for (const key of ['tp', 'ep', 'layerGroups'] as const) {
    const v = split[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1 && v <= MAX_SPLIT))
      out.push(`${label(key)} = ${v} is not an integer in 1..${MAX_SPLIT}`);
  }
  const tp = split.tp;
  if (
    tp !== undefined &&
    out.length === 0 &&
    model &&
    (model.nKvHeads % tp !== 0 || model.nHeads % tp !== 0)
  ) {
    out.push(
      `${label('tp')} = ${tp} does not divide ${model.id}'s ${model.nHeads} heads and ${model.nKvHeads} KV heads`,
    );
  }
  return out;
}

/** The pass options a call uses (those its own attrs do not override), refused as verify refuses the attrs. */
function checkOptions(op: Op, model: ModelFacts, options: DecomposeOptions): void {
  const unless = (key: string, v: number) => (intAttr(op.attrs, key) === undefined ? v : undefined);
  const used: Split = {
    tp: unless('tp', options.tp),
    ep: unless('ep', options.ep),
    layerGroups: unless('layer_groups', options.layerGroups),
  };
  const problems = splitProblems(used, model, (key) => `option ${key}`);
  if (problems.length > 0) {
    throw new IrError(
      IrErrorCode.Pass,
      problems.map((p) => ({ message: `decompose: ${p}`, ...(op.loc ? { loc: op.loc } : {}) })),
    );
  }
}

/**
 * llm.call → llm.tokenize → llm.prefill (per layer group and shard when tp/ep > 1, joined by
 * llm.allreduce / llm.merge) → kv.transfer → llm.decode (one op for all output tokens) → llm.detokenize.
 * The detokenize result keeps the call's result id, so users of the call need no rewrite. The call's
 * `tp`, `ep` and `layer_groups` attrs, when set, take the place of the pass options.
 */
export function decomposeCall(op: Op, ctx: DecomposeContext): readonly Op[] {
  const model = findModel(strAttr(op.attrs, 'model') ?? '')!;
  checkOptions(op, model, ctx.options);
  // The call's own attrs win over the pass options: a graph says how its LLM is split.
  const tp = intAttr(op.attrs, 'tp') ?? ctx.options.tp;
  const ep = intAttr(op.attrs, 'ep') ?? ctx.options.ep;
  const layerGroups = intAttr(op.attrs, 'layer_groups') ?? ctx.options.layerGroups;
  if (tp > 1 && ep > 1) {
    throw new IrError(IrErrorCode.Pass, [
      {
        message: 'decompose: choose tensor parallelism (tp) or expert parallelism (ep), not both',
        ...(op.loc ? { loc: op.loc } : {}),
      },
    ]);
  }
  const T = intAttr(op.attrs, 'prompt_tokens') ?? 0;
  const out = intAttr(op.attrs, 'max_tokens') ?? 0;
  const result = op.results[0]!;
  const base = result.id.replace(/#/g, '_');
  const shared: Record<string, Attrs[string]> = {};
  for (const [k, v] of Object.entries(op.attrs)) if (!CALL_ONLY.has(k)) shared[k] = v;
  const at = (extra: Attrs): Attrs => ({ ...shared, ...extra });
  const val = (suffix: string, type: Value['type']): Value => ({
    id: ctx.names.fresh(`${base}_${suffix}`),
    type,
  });

  const tokens = val('tok', tensorType([T], 'i32'));
  const ops: Op[] = [
    makeOp('llm.tokenize', { operands: op.operands, results: [tokens], attrs: at({ tokens: int(T) }) }),
  ];
  const { kvs, hidden } =
    tp * ep > 1
      ? shardedPrefill(
          model,
          T,
          tokens,
          ops,
          { tp, ep, groups: Math.min(layerGroups, model.layers) },
          at,
          val,
        )
      : singlePrefill(T, tokens, ops, at, val);
  const moved = val('kv', KV_CACHE);
  ops.push(makeOp('kv.transfer', { operands: kvs, results: [moved], attrs: at({ tokens: int(T) }) }));
  const ids = val('ids', tensorType([out], 'i32'));
  const split: Attrs = tp > 1 ? { tp: int(tp) } : ep > 1 ? { ep: int(ep) } : {};
  const decodeAttrs = at({ tokens: int(out), context_tokens: int(T), ...split });
  ops.push(makeOp('llm.decode', { operands: [moved, ...hidden], results: [ids], attrs: decodeAttrs }));
  ops.push(makeOp('llm.detokenize', { operands: [ids], results: [result], attrs: at({ tokens: int(out) }) }));
  return ops;
}

type AttrFn = (extra: Attrs) => Attrs;
type ValFn = (suffix: string, type: Value['type']) => Value;

function singlePrefill(T: number, tokens: Value, ops: Op[], at: AttrFn, val: ValFn) {
  const kv = val('prefill', KV_CACHE);
  ops.push(makeOp('llm.prefill', { operands: [tokens], results: [kv], attrs: at({ tokens: int(T) }) }));
  return { kvs: [kv], hidden: [] as Value[] };
}

function shardedPrefill(
  model: ModelFacts,
  T: number,
  tokens: Value,
  ops: Op[],
  split: { tp: number; ep: number; groups: number },
  at: AttrFn,
  val: ValFn,
) {
  const shards = split.tp * split.ep;
  const hiddenType = tensorType([T, model.dModel], LLM_DTYPE);
  const kvs: Value[] = [];
  let input = tokens;
  for (let g = 0; g < split.groups; g++) {
    const start = Math.round((g * model.layers) / split.groups);
    const end = Math.round(((g + 1) * model.layers) / split.groups);
    const partials: Value[] = [];
    for (let s = 0; s < shards; s++) {
      const kv = val(`kv_g${g}_s${s}`, KV_CACHE);
      const h = val(`h_g${g}_s${s}`, hiddenType);
      const par: Attrs = split.tp > 1 ? { tp: int(split.tp) } : { ep: int(split.ep) };
      const attrs = at({
        tokens: int(T),
        layer_start: int(start),
        layer_end: int(end),
        shard: int(s),
        ...par,
      });
      ops.push(makeOp('llm.prefill', { operands: [input], results: [kv, h], attrs }));
      kvs.push(kv);
      partials.push(h);
    }
    const joined = val(`h_g${g}`, hiddenType);
    const [name, degree]: [string, Attrs] =
      split.tp > 1 ? ['llm.allreduce', { tp: int(split.tp) }] : ['llm.merge', { ep: int(split.ep) }];
    const attrs = at({ tokens: int(T), layers: int(end - start), ...degree });
    ops.push(makeOp(name, { operands: partials, results: [joined], attrs }));
    input = joined;
  }
  return { kvs, hidden: [input] };
}
