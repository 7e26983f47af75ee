// A whole Llama layer stack as one function (one native call): per layer RMSNorm, Q/K/V, RoPE,
// attention over the KV cache, output projection, SwiGLU, then the final RMSNorm, with every
// intermediate in scratch buffers allocated once per call. Decode runs it on one row at `pos`,
// prefill on a prompt's rows at pos, pos + 1, … (each attends causally to the cache and the rows
// before it): one generator, so both compute alike. Weights come packed per layer; each tensor is a
// reinterpret_cast view at its offset, so nothing is copied. Products are loops with reassociable
// adds, which LLVM vectorises for the target.
import { LLAMA_MATRICES, type LlamaMatrix, llamaLayerLayout } from '../llama-layout.js';
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import { argType, f32, func, generic, map } from './common.js';
import { q8MatvecLines } from './quant.js';
import { ropeRotation, softmaxLines } from './rowwise.js';

type Spec = Extract<KernelSpec, { op: 'nn.llama_decode' | 'nn.llama_prefill' }>;

/** What every part of one stack's MLIR is written with: the spec, its sizes and the types it names. */
interface Stack {
  s: Spec;
  args: ReturnType<typeof kernelArgs>;
  byName: (n: string) => string;
  layout: ReturnType<typeof llamaLayerLayout>;
  decode: boolean;
  q8: boolean;
  /** The row count in types (R), as a size in shapes (Rs: static where it can be), as an index (Ri). */
  R: string;
  Rs: string;
  Ri: string;
  /** Head dimension, the K/V row's width (every KV head), query heads per KV head. */
  hd: number;
  kv: number;
  g: number;
  act: (n: number) => string;
  ssT: string;
  cacheT: string;
  /** The types of the weight views, by name (see weightViews). */
  T: Record<string, string>;
}

/** The sizes and types of spec `s`'s stack. */
function stackOf(s: Spec): Stack {
  const args = kernelArgs(s);
  const byName = (n: string) => argType(args.find((a) => a.name === n)!);
  const decode = s.op === 'nn.llama_decode';
  const R = decode ? '1' : '?';
  const hd = s.dim / s.heads;
  return {
    s,
    args,
    byName,
    layout: llamaLayerLayout(s),
    decode,
    q8: decode && s.quant === 'q8_0',
    R,
    Rs: decode ? '1' : '%rows',
    Ri: decode ? '%c1' : '%rows',
    hd,
    kv: hd * s.kvHeads,
    g: s.heads / s.kvHeads,
    act: (n: number) => `memref<${R}x${n}xf32>`,
    ssT: `memref<${R}xf32>`,
    cacheT: byName('kCache'),
    T: {},
  };
}

/** `out = x / √(mean(x²) + eps) · w`, row by row (`%ss` holds each row's factor). */
function rmsnorm(c: Stack, x: string, w: string, wt: string, out: string): string[] {
  const { s, act, ssT } = c;
  const t = act(s.dim);
  return [
    `linalg.fill ins(%zero : f32) outs(%ss : ${ssT})`,
    ...generic({
      maps: [map(2, 'd0, d1'), map(2, 'd0')],
      iters: 'pr',
      ins: [{ v: x, t }],
      outs: [{ v: '%ss', t: ssT }],
      blockArgs: ['%xv: f32', '%acc: f32'],
      body: [
        '%sq = arith.mulf %xv, %xv : f32',
        '%r = arith.addf %acc, %sq fastmath<reassoc> : f32',
        'linalg.yield %r : f32',
      ],
    }),
    ...generic({
      maps: [map(1, 'd0')],
      iters: 'p',
      ins: [],
      outs: [{ v: '%ss', t: ssT }],
      blockArgs: ['%sv: f32'],
      body: [
        `%n = arith.constant ${f32(s.dim)} : f32`,
        `%eps = arith.constant ${f32(s.eps)} : f32`,
        '%one = arith.constant 1.0 : f32',
        '%mean = arith.divf %sv, %n : f32',
        '%me = arith.addf %mean, %eps : f32',
        '%sq = math.sqrt %me : f32',
        '%r = arith.divf %one, %sq : f32',
        'linalg.yield %r : f32',
      ],
    }),
    ...generic({
      maps: [map(2, 'd0, d1'), map(2, 'd1'), map(2, 'd0'), map(2, 'd0, d1')],
      iters: 'pp',
      ins: [
        { v: x, t },
        { v: w, t: wt },
        { v: '%ss', t: ssT },
      ],
      outs: [{ v: out, t }],
      blockArgs: ['%xv: f32', '%wv: f32', '%inv: f32', '%o: f32'],
      body: ['%a = arith.mulf %xv, %inv : f32', '%r = arith.mulf %a, %wv : f32', 'linalg.yield %r : f32'],
    }),
  ];
}

/**
 * `out[r] (+)= w · x[r]` for a row-major [m, k] view `w`. The weight row is the outer loop: it is
 * read from memory once and from L1 for every further prompt row.
 */
function linear(
  { act }: Stack,
  w: string,
  wt: string,
  [m, k]: number[],
  x: string,
  out: string,
  accumulate: boolean,
) {
  return [
    ...(accumulate ? [] : [`linalg.fill ins(%zero : f32) outs(${out} : ${act(m!)})`]),
    ...generic({
      maps: [map(3, 'd0, d2'), map(3, 'd1, d2'), map(3, 'd1, d0')],
      iters: 'ppr',
      ins: [
        { v: w, t: wt },
        { v: x, t: act(k!) },
      ],
      outs: [{ v: out, t: act(m!) }],
      blockArgs: ['%a: f32', '%b: f32', '%acc: f32'],
      body: [
        '%m = arith.mulf %a, %b fastmath<reassoc,contract> : f32',
        '%r = arith.addf %acc, %m fastmath<reassoc,contract> : f32',
        'linalg.yield %r : f32',
      ],
    }),
  ];
}

/** Rotates pairs of `src` ([rows, heads·hd]) into `dst`, row r at position pos + r, as nn.rope. */
function rope(c: Stack, name: string, heads: number, src: string, dst: string): string[] {
  const { s, R, Rs, hd, act } = c;
  const t4 = `memref<${R}x${heads}x${hd / 2}x2xf32>`;
  const ex = (v: string, as: string) =>
    `${as} = memref.expand_shape ${v} [[0], [1, 2, 3]] output_shape [${Rs}, ${heads}, ${hd / 2}, 2] : ${act(heads * hd)} into ${t4}`;
  return [
    ex(src, `%${name}s4`),
    ex(dst, `%${name}d4`),
    ...generic({
      maps: [map(4, 'd0, d1, d2, 0'), map(4, 'd0, d1, d2, 1'), map(4, 'd0, d1, d2, d3')],
      iters: 'pppp',
      ins: [
        { v: `%${name}s4`, t: t4 },
        { v: `%${name}s4`, t: t4 },
      ],
      outs: [{ v: `%${name}d4`, t: t4 }],
      blockArgs: ['%x0: f32', '%x1: f32', '%o: f32'],
      body: [
        '%ri = linalg.index 0 : index',
        '%rp = arith.addi %p, %ri : index',
        '%rp32 = arith.index_cast %rp : index to i32',
        '%posf = arith.sitofp %rp32 : i32 to f32',
        ...ropeRotation(2, hd, s.theta, '%posf'),
      ],
    }),
  ];
}

/** The scratch buffers one call allocates once, by name and type. */
function scratchBuffers({ s, R, kv, act, ssT }: Stack): [string, string][] {
  return [
    ['h', act(s.dim)],
    ['xb', act(s.dim)],
    ['q0', act(s.dim)],
    ['q', act(s.dim)],
    ['k0', act(kv)],
    ['kr', act(kv)],
    ['vr', act(kv)],
    ['ao', act(s.dim)],
    ['gate', act(s.hiddenDim)],
    ['up', act(s.hiddenDim)],
    ['sc', `memref<${R}x${s.heads}x${s.seqLen}xf32>`],
    ['ss', ssT],
  ];
}

/**
 * The views `%W_<name>` of one layer's norms and matrices (and their q8_0 scales) in the packed
 * weights; their types go to `c.T`.
 */
function weightViews(c: Stack): string[] {
  const { byName, q8, T } = c;
  const { dims, offsets, scales } = c.layout;
  /** A view `%W_<name>` of `shape` at `offset` (a constant within the layer) in `buffer`. */
  const view = (
    name: string,
    buffer: string,
    base: string,
    offset: number,
    shape: number[],
    elem: string,
  ) => {
    T[name] =
      `memref<${shape.join('x')}x${elem}, strided<[${shape.length === 1 ? '1' : `${shape[1]}, 1`}], offset: ?>>`;
    return [
      `%o_${name}_c = arith.constant ${offset} : index`,
      `%o_${name} = arith.addi ${base}, %o_${name}_c : index`,
      `%W_${name} = memref.reinterpret_cast ${buffer} to offset: [%o_${name}], sizes: [${shape.join(', ')}], ` +
        `strides: [${shape.length === 1 ? '1' : `${shape[1]}, 1`}] : ${byName(buffer.slice(1))} to ${T[name]}`,
    ];
  };
  return [
    ...(['rmsAtt', 'rmsFfn'] as const).flatMap((n) =>
      view(n, q8 ? '%params' : '%weights', q8 ? '%pbase' : '%lbase', offsets[n], dims[n], 'f32'),
    ),
    ...LLAMA_MATRICES.flatMap((n) => [
      ...view(n, '%weights', '%lbase', offsets[n], dims[n], q8 ? 'i8' : 'f32'),
      ...(q8 ? view(`${n}_s`, '%params', '%pbase', scales[n], [dims[n][0], dims[n][1]! / 32], 'f32') : []),
    ]),
  ];
}

/** `out (+)= W_name · x`, in f32 or (decode's one row) q8_0. */
function mv(c: Stack, name: LlamaMatrix, x: string, out: string, accumulate: boolean): string[] {
  const { q8, T, act } = c;
  const [m, k] = c.layout.dims[name] as [number, number];
  if (!q8) return linear(c, `%W_${name}`, T[name]!, [m, k], x, out, accumulate);
  const flat = (v: string, as: string, n: number) =>
    `${as} = memref.collapse_shape ${v} [[0, 1]] : ${act(n)} into memref<${n}xf32>`;
  return [
    flat(x, `%${name}_x1`, k),
    flat(out, `%${name}_y1`, m),
    ...q8MatvecLines({
      p: `${name}_`,
      q: `%W_${name}`,
      qT: T[name]!,
      scales: `%W_${name}_s`,
      scalesT: T[`${name}_s`]!,
      x: `%${name}_x1`,
      xT: `memref<${k}xf32>`,
      y: `%${name}_y1`,
      yT: `memref<${m}xf32>`,
      m,
      k,
      accumulate,
    }),
  ];
}

/** The types of the attention's views: the cache as rows and as heads, the scores, the heads of a row. */
function attentionTypes({ s, R, hd, kv }: Stack) {
  const kvT3 = `memref<?x${s.kvHeads}x${hd}xf32, strided<[${kv}, ${hd}, 1], offset: ?>>`;
  const scT = `memref<${R}x${s.heads}x?xf32, strided<[${s.heads * s.seqLen}, ${s.seqLen}, 1]>>`;
  const heads3 = `memref<${R}x${s.heads}x${hd}xf32>`;
  const rowsT = `memref<${R}x${kv}xf32, strided<[${kv}, 1], offset: ?>>`;
  return { kvT3, scT, heads3, rowsT };
}

/**
 * One layer's attention on `%h`: RMSNorm, Q/K/V, RoPE, this call's K and V rows into the cache,
 * every row's scores against the cache so far (causal within a prompt), softmax, the weighted sum
 * of the values, and the output projection added to `%h`.
 */
function attention(c: Stack): string[] {
  const { s, R, Rs, hd, kv, g, act, cacheT, decode, T } = c;
  const { kvT3, scT, heads3, rowsT } = attentionTypes(c);
  const cacheViews = (t: string) => [
    `%${t}rows = memref.reinterpret_cast %${t}Cache to offset: [%rowOff], sizes: [${Rs}, ${kv}], strides: [${kv}, 1] : ${cacheT} to ${rowsT}`,
    `%${t}all = memref.reinterpret_cast %${t}Cache to offset: [%cacheOff], sizes: [%len, ${s.kvHeads}, ${hd}], strides: [${kv}, ${hd}, 1] : ${cacheT} to ${kvT3}`,
  ];
  // A prompt row i sees keys up to pos + i; decode's one row sees the whole cache so far.
  const causalMask = decode
    ? []
    : generic({
        maps: [map(3, 'd0, d1, d2')],
        iters: 'ppp',
        ins: [],
        outs: [{ v: '%scv', t: scT }],
        blockArgs: ['%sv: f32'],
        body: [
          '%i = linalg.index 0 : index',
          '%j = linalg.index 2 : index',
          '%ninf = arith.constant 0xFF800000 : f32',
          '%last = arith.addi %p, %i : index',
          '%future = arith.cmpi ugt, %j, %last : index',
          '%r = arith.select %future, %ninf, %sv : f32',
          'linalg.yield %r : f32',
        ],
      });
  return [
    `%cacheOff = arith.muli %l, %cSK : index`,
    '%pk = arith.muli %p, %cKV : index',
    '%rowOff = arith.addi %cacheOff, %pk : index',
    ...cacheViews('k'),
    ...cacheViews('v'),
    ...rmsnorm(c, '%h', '%W_rmsAtt', T.rmsAtt!, '%xb'),
    ...mv(c, 'wq', '%xb', '%q0', false),
    ...mv(c, 'wk', '%xb', '%k0', false),
    ...mv(c, 'wv', '%xb', '%vr', false),
    ...rope(c, 'rq', s.heads, '%q0', '%q'),
    ...rope(c, 'rk', s.kvHeads, '%k0', '%kr'),
    // linalg.copy lowers to loops; memref.copy into a dynamically sized strided view would call
    // the MLIR C runner's memrefCopy, which the addon does not link.
    `linalg.copy ins(%kr : ${act(kv)}) outs(%krows : ${rowsT})`,
    `linalg.copy ins(%vr : ${act(kv)}) outs(%vrows : ${rowsT})`,
    `%scv = memref.subview %sc[0, 0, 0] [${Rs}, ${s.heads}, %len] [1, 1, 1] : memref<${R}x${s.heads}x${s.seqLen}xf32> to ${scT}`,
    `linalg.fill ins(%zero : f32) outs(%scv : ${scT})`,
    // sc[i, h, j] = q[i, h, :] · k[j, h/g, :] / √hd
    ...generic({
      maps: [map(4, 'd0, d1, d3'), map(4, `d2, d1 floordiv ${g}, d3`), map(4, 'd0, d1, d2')],
      iters: 'pppr',
      ins: [
        { v: '%q3', t: heads3 },
        { v: '%kall', t: kvT3 },
      ],
      outs: [{ v: '%scv', t: scT }],
      blockArgs: ['%a: f32', '%b: f32', '%acc: f32'],
      body: [
        `%scale = arith.constant ${f32(1 / Math.sqrt(hd))} : f32`,
        '%m = arith.mulf %a, %b : f32',
        '%ms = arith.mulf %m, %scale : f32',
        '%r = arith.addf %acc, %ms fastmath<reassoc,contract> : f32',
        'linalg.yield %r : f32',
      ],
    }),
    ...causalMask,
    ...softmaxLines('sm', '%scv', '%scv', scT, [decode ? 1 : null, s.heads, null]),
    `linalg.fill ins(%zero : f32) outs(%ao : ${act(s.dim)})`,
    // ao[i, h, d] = Σ_j p[i, h, j] · v[j, h/g, d], d innermost (contiguous in v)
    ...generic({
      maps: [map(4, 'd0, d1, d2'), map(4, `d2, d1 floordiv ${g}, d3`), map(4, 'd0, d1, d3')],
      iters: 'pprp',
      ins: [
        { v: '%scv', t: scT },
        { v: '%vall', t: kvT3 },
      ],
      outs: [{ v: '%ao3', t: heads3 }],
      blockArgs: ['%a: f32', '%b: f32', '%acc: f32'],
      body: [
        '%m = arith.mulf %a, %b fastmath<reassoc,contract> : f32',
        '%r = arith.addf %acc, %m fastmath<reassoc,contract> : f32',
        'linalg.yield %r : f32',
      ],
    }),
    ...mv(c, 'wo', '%ao', '%h', true),
  ];
}

/** One layer's SwiGLU feed-forward on `%h`: RMSNorm, gate and up, SiLU(gate) · up, down added to `%h`. */
function feedForward(c: Stack): string[] {
  const { s, act, T } = c;
  return [
    ...rmsnorm(c, '%h', '%W_rmsFfn', T.rmsFfn!, '%xb'),
    ...mv(c, 'w1', '%xb', '%gate', false),
    ...mv(c, 'w3', '%xb', '%up', false),
    ...generic({
      maps: [map(2, 'd0, d1'), map(2, 'd0, d1')],
      iters: 'pp',
      ins: [{ v: '%up', t: act(s.hiddenDim) }],
      outs: [{ v: '%gate', t: act(s.hiddenDim) }],
      blockArgs: ['%u: f32', '%gv: f32'],
      body: [
        '%one = arith.constant 1.0 : f32',
        '%neg = arith.negf %gv : f32',
        '%e = math.exp %neg : f32',
        '%den = arith.addf %one, %e : f32',
        '%silu = arith.divf %gv, %den : f32',
        '%r = arith.mulf %silu, %u : f32',
        'linalg.yield %r : f32',
      ],
    }),
    ...mv(c, 'w2', '%gate', '%h', true),
  ];
}

/** One layer, at index `%l`: its weights' views, attention, feed-forward. */
function layer(c: Stack): string[] {
  return [
    '%lbase = arith.muli %l, %cP : index',
    ...(c.q8 ? ['%pbase = arith.muli %l, %cQ : index'] : []),
    ...weightViews(c),
    ...attention(c),
    ...feedForward(c),
  ];
}

/** The MLIR of the stack `s` names: one function, a loop over the layers. */
export function llamaStack(s: Spec): string {
  const c = stackOf(s);
  const { args, byName, decode, q8, Rs, Ri, hd, kv, act } = c;
  const { weights, params } = c.layout;
  const { heads3 } = attentionTypes(c);
  const scratch = scratchBuffers(c);
  // Decode's x and out are one row: viewed as [1, dim], the layer code is the prompt's.
  const rowView = (v: string) =>
    `%${v}2 = memref.expand_shape %${v} [[0, 1]] output_shape [1, ${s.dim}] : ${byName(v)} into ${act(s.dim)}`;
  const [x, out] = decode ? ['%x2', '%out2'] : ['%x', '%out'];
  return func(entryName(s), args, [
    '%c0 = arith.constant 0 : index',
    '%c1 = arith.constant 1 : index',
    `%cL = arith.constant ${s.layers} : index`,
    `%cP = arith.constant ${weights} : index`,
    ...(q8 ? [`%cQ = arith.constant ${params} : index`] : []),
    `%cSK = arith.constant ${s.seqLen * kv} : index`,
    `%cKV = arith.constant ${kv} : index`,
    '%zero = arith.constant 0.0 : f32',
    `%p32 = memref.load %pos[%c0] : ${byName('pos')}`,
    '%p = arith.index_cast %p32 : i32 to index',
    ...(decode ? [rowView('x'), rowView('out')] : [`%rows = memref.dim %x, %c0 : ${byName('x')}`]),
    `%len = arith.addi %p, ${Ri} : index`,
    ...scratch.map(
      ([n, t]) => `%${n} = memref.alloc(${decode ? '' : '%rows'}) {alignment = 64 : i64} : ${t}`,
    ),
    `%q3 = memref.expand_shape %q [[0], [1, 2]] output_shape [${Rs}, ${s.heads}, ${hd}] : ${act(s.dim)} into ${heads3}`,
    `%ao3 = memref.expand_shape %ao [[0], [1, 2]] output_shape [${Rs}, ${s.heads}, ${hd}] : ${act(s.dim)} into ${heads3}`,
    `memref.copy ${x}, %h : ${act(s.dim)} to ${act(s.dim)}`,
    'scf.for %l = %c0 to %cL step %c1 {',
    ...layer(c).map((l) => `  ${l}`),
    '}',
    ...rmsnorm(c, '%h', '%rmsFinal', byName('rmsFinal'), out),
    ...scratch.map(([n, t]) => `memref.dealloc %${n} : ${t}`),
  ]);
}
