// One decode step of a whole Llama layer stack as one function (one native call per token): per
// layer RMSNorm, Q/K/V, RoPE, attention over the KV cache, output projection, SwiGLU, with every
// intermediate in scratch buffers allocated once per call, then the final RMSNorm. Weights come
// packed per layer; each tensor is a reinterpret_cast view at its offset, so nothing is copied.
// Matrix-vector products are loops with reassociable adds, which LLVM vectorises for the target.
import { LLAMA_MATRICES, type LlamaMatrix, llamaLayerLayout } from '../llama-layout.js';
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import { argType, f32, func, generic, map } from './common.js';
import { q8MatvecLines } from './quant.js';
import { ropeRotation, softmaxLines } from './rowwise.js';

type Spec = Extract<KernelSpec, { op: 'nn.llama_decode' }>;

const vec = (n: number | string) => `memref<${n}xf32>`;
const view1 = (n: number) => `memref<${n}xf32, strided<[1], offset: ?>>`;

/** `out (+)= w · x` for a row-major [rows, cols] view; `accumulate` adds onto what `out` holds. */
function matvec(
  w: string,
  wt: string,
  x: string,
  xt: string,
  out: string,
  outT: string,
  accumulate: boolean,
): string[] {
  return [
    ...(accumulate ? [] : [`linalg.fill ins(%zero : f32) outs(${out} : ${outT})`]),
    ...generic({
      maps: [map(2, 'd0, d1'), map(2, 'd1'), map(2, 'd0')],
      iters: 'pr',
      ins: [
        { v: w, t: wt },
        { v: x, t: xt },
      ],
      outs: [{ v: out, t: outT }],
      blockArgs: ['%a: f32', '%b: f32', '%acc: f32'],
      body: [
        '%m = arith.mulf %a, %b fastmath<reassoc,contract> : f32',
        '%r = arith.addf %acc, %m fastmath<reassoc,contract> : f32',
        'linalg.yield %r : f32',
      ],
    }),
  ];
}

function rmsnorm(s: Spec, x: string, w: string, wt: string, out: string): string[] {
  const t = vec(s.dim);
  return [
    'linalg.fill ins(%zero : f32) outs(%ss : memref<1xf32>)',
    ...generic({
      maps: [map(1, 'd0'), map(1, '0')],
      iters: 'r',
      ins: [{ v: x, t }],
      outs: [{ v: '%ss', t: 'memref<1xf32>' }],
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
      outs: [{ v: '%ss', t: 'memref<1xf32>' }],
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
      maps: [map(1, 'd0'), map(1, 'd0'), map(1, '0'), map(1, 'd0')],
      iters: 'p',
      ins: [
        { v: x, t },
        { v: w, t: wt },
        { v: '%ss', t: 'memref<1xf32>' },
      ],
      outs: [{ v: out, t }],
      blockArgs: ['%xv: f32', '%wv: f32', '%inv: f32', '%o: f32'],
      body: ['%a = arith.mulf %xv, %inv : f32', '%r = arith.mulf %a, %wv : f32', 'linalg.yield %r : f32'],
    }),
  ];
}

/** Rotates pairs of `src` ([heads·hd]) by pos·theta^(−2p/hd) into `dst`, as the nn.rope kernel. */
function rope(s: Spec, name: string, heads: number, src: string, dst: string): string[] {
  const hd = s.dim / s.heads;
  const flat = vec(heads * hd);
  const t4 = `memref<${heads}x${hd / 2}x2xf32>`;
  const ex = (v: string, as: string) =>
    `${as} = memref.expand_shape ${v} [[0, 1, 2]] output_shape [${heads}, ${hd / 2}, 2] : ${flat} into ${t4}`;
  return [
    ex(src, `%${name}s4`),
    ex(dst, `%${name}d4`),
    ...generic({
      maps: [map(3, 'd0, d1, 0'), map(3, 'd0, d1, 1'), map(3, 'd0, d1, d2')],
      iters: 'ppp',
      ins: [
        { v: `%${name}s4`, t: t4 },
        { v: `%${name}s4`, t: t4 },
      ],
      outs: [{ v: `%${name}d4`, t: t4 }],
      blockArgs: ['%x0: f32', '%x1: f32', '%o: f32'],
      body: ropeRotation(1, hd, s.theta, '%posf'),
    }),
  ];
}

export function llamaDecode(s: Spec): string {
  const args = kernelArgs(s);
  const byName = (n: string) => argType(args.find((a) => a.name === n)!);
  const { dims, offsets, scales, weights, params } = llamaLayerLayout(s);
  const q8 = s.quant === 'q8_0';
  const hd = s.dim / s.heads;
  const kv = hd * s.kvHeads;
  const g = s.heads / s.kvHeads;
  const cacheT = byName('kCache');
  const scratch: [string, string][] = [
    ['h', vec(s.dim)],
    ['xb', vec(s.dim)],
    ['q0', vec(s.dim)],
    ['q', vec(s.dim)],
    ['k0', vec(kv)],
    ['kr', vec(kv)],
    ['vr', vec(kv)],
    ['ao', vec(s.dim)],
    ['gate', vec(s.hiddenDim)],
    ['up', vec(s.hiddenDim)],
    ['sc', `memref<${s.heads}x${s.seqLen}xf32>`],
    ['ss', 'memref<1xf32>'],
  ];
  const T: Record<string, string> = {};
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
  const views = [
    ...(['rmsAtt', 'rmsFfn'] as const).flatMap((n) =>
      view(n, q8 ? '%params' : '%weights', q8 ? '%pbase' : '%lbase', offsets[n], dims[n], 'f32'),
    ),
    ...LLAMA_MATRICES.flatMap((n) => [
      ...view(n, '%weights', '%lbase', offsets[n], dims[n], q8 ? 'i8' : 'f32'),
      ...(q8 ? view(`${n}_s`, '%params', '%pbase', scales[n], [dims[n][0], dims[n][1]! / 32], 'f32') : []),
    ]),
  ];
  /** `out (+)= W_name · x`, in f32 or q8_0. */
  const mv = (name: LlamaMatrix, x: string, out: string, accumulate: boolean) => {
    const [m, k] = dims[name] as [number, number];
    if (!q8) return matvec(`%W_${name}`, T[name]!, x, vec(k), out, vec(m), accumulate);
    return q8MatvecLines({
      p: `${name}_`,
      q: `%W_${name}`,
      qT: T[name]!,
      scales: `%W_${name}_s`,
      scalesT: T[`${name}_s`]!,
      x,
      xT: vec(k),
      y: out,
      yT: vec(m),
      m,
      k,
      accumulate,
    });
  };
  const kvT3 = `memref<?x${s.kvHeads}x${hd}xf32, strided<[${kv}, ${hd}, 1], offset: ?>>`;
  const scT = `memref<${s.heads}x?xf32, strided<[${s.seqLen}, 1]>>`;
  const heads2 = `memref<${s.heads}x${hd}xf32>`;
  const cacheViews = (c: string) => [
    `%${c}row = memref.reinterpret_cast %${c}Cache to offset: [%rowOff], sizes: [${kv}], strides: [1] : ${cacheT} to ${view1(kv)}`,
    `%${c}all = memref.reinterpret_cast %${c}Cache to offset: [%cacheOff], sizes: [%len, ${s.kvHeads}, ${hd}], strides: [${kv}, ${hd}, 1] : ${cacheT} to ${kvT3}`,
  ];
  const layer = [
    '%lbase = arith.muli %l, %cP : index',
    ...(q8 ? ['%pbase = arith.muli %l, %cQ : index'] : []),
    ...views,
    `%cacheOff = arith.muli %l, %cSK : index`,
    '%pk = arith.muli %p, %cKV : index',
    '%rowOff = arith.addi %cacheOff, %pk : index',
    ...cacheViews('k'),
    ...cacheViews('v'),
    ...rmsnorm(s, '%h', '%W_rmsAtt', T.rmsAtt!, '%xb'),
    ...mv('wq', '%xb', '%q0', false),
    ...mv('wk', '%xb', '%k0', false),
    ...mv('wv', '%xb', '%vr', false),
    ...rope(s, 'rq', s.heads, '%q0', '%q'),
    ...rope(s, 'rk', s.kvHeads, '%k0', '%kr'),
    `memref.copy %kr, %krow : ${vec(kv)} to ${view1(kv)}`,
    `memref.copy %vr, %vrow : ${vec(kv)} to ${view1(kv)}`,
    `%scv = memref.subview %sc[0, 0] [${s.heads}, %len] [1, 1] : memref<${s.heads}x${s.seqLen}xf32> to ${scT}`,
    `linalg.fill ins(%zero : f32) outs(%scv : ${scT})`,
    // sc[h, j] = q[h, :] · k[j, h/g, :] / √hd
    ...generic({
      maps: [map(3, 'd0, d2'), map(3, `d1, d0 floordiv ${g}, d2`), map(3, 'd0, d1')],
      iters: 'ppr',
      ins: [
        { v: '%q2', t: heads2 },
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
    ...softmaxLines('sm', '%scv', '%scv', scT, [s.heads, null]),
    `linalg.fill ins(%zero : f32) outs(%ao : ${vec(s.dim)})`,
    // ao[h, d] = Σ_j p[h, j] · v[j, h/g, d], d innermost (contiguous in v)
    ...generic({
      maps: [map(3, 'd0, d1'), map(3, `d1, d0 floordiv ${g}, d2`), map(3, 'd0, d2')],
      iters: 'prp',
      ins: [
        { v: '%scv', t: scT },
        { v: '%vall', t: kvT3 },
      ],
      outs: [{ v: '%ao2', t: heads2 }],
      blockArgs: ['%a: f32', '%b: f32', '%acc: f32'],
      body: [
        '%m = arith.mulf %a, %b fastmath<reassoc,contract> : f32',
        '%r = arith.addf %acc, %m fastmath<reassoc,contract> : f32',
        'linalg.yield %r : f32',
      ],
    }),
    ...mv('wo', '%ao', '%h', true),
    ...rmsnorm(s, '%h', '%W_rmsFfn', T.rmsFfn!, '%xb'),
    ...mv('w1', '%xb', '%gate', false),
    ...mv('w3', '%xb', '%up', false),
    ...generic({
      maps: [map(1, 'd0'), map(1, 'd0')],
      iters: 'p',
      ins: [{ v: '%up', t: vec(s.hiddenDim) }],
      outs: [{ v: '%gate', t: vec(s.hiddenDim) }],
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
    ...mv('w2', '%gate', '%h', true),
  ];
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
    '%len = arith.addi %p, %c1 : index',
    '%posf = arith.sitofp %p32 : i32 to f32',
    ...scratch.map(([n, t]) => `%${n} = memref.alloc() {alignment = 64 : i64} : ${t}`),
    `%q2 = memref.expand_shape %q [[0, 1]] output_shape [${s.heads}, ${hd}] : ${vec(s.dim)} into ${heads2}`,
    `%ao2 = memref.expand_shape %ao [[0, 1]] output_shape [${s.heads}, ${hd}] : ${vec(s.dim)} into ${heads2}`,
    `memref.copy %x, %h : ${byName('x')} to ${vec(s.dim)}`,
    'scf.for %l = %c0 to %cL step %c1 {',
    ...layer.map((l) => `  ${l}`),
    '}',
    ...rmsnorm(s, '%h', '%rmsFinal', byName('rmsFinal'), '%out'),
    ...scratch.map(([n, t]) => `memref.dealloc %${n} : ${t}`),
  ]);
}
