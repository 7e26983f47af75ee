/**
 * Architecture facts only. Precision is left out on purpose: it is a serving choice (cost prices
 * fp16 and fp8), so the byte helpers below take the bytes per element from the caller.
 */
export interface ModelFacts {
  readonly id: string;
  readonly params: number;
  readonly layers: number;
  readonly dModel: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly ffnDim: number;
  readonly vocab: number;
}

/**
 * The Llama 3 rows copy the paper's reference models.json (public architecture facts);
 * `tiny-llama` is a small demo model (llama2.c "stories15M" shape).
 */
export const MODELS: readonly ModelFacts[] = Object.freeze(
  [
    {
      id: 'llama3-8b',
      params: 8.03e9,
      layers: 32,
      dModel: 4096,
      nHeads: 32,
      nKvHeads: 8,
      headDim: 128,
      ffnDim: 14336,
      vocab: 128256,
    },
    {
      id: 'llama3-70b',
      params: 70.6e9,
      layers: 80,
      dModel: 8192,
      nHeads: 64,
      nKvHeads: 8,
      headDim: 128,
      ffnDim: 28672,
      vocab: 128256,
    },
    {
      id: 'tiny-llama',
      params: 15.2e6,
      layers: 6,
      dModel: 288,
      nHeads: 6,
      nKvHeads: 6,
      headDim: 48,
      ffnDim: 768,
      vocab: 32000,
    },
  ].map((m) => Object.freeze(m)),
);

export function modelIds(): string[] {
  return MODELS.map((m) => m.id);
}

/** Undefined for an unknown id: ir reports it as a diagnostic, cost as a typed error. */
export function findModel(id: string): ModelFacts | undefined {
  return MODELS.find((m) => m.id === id);
}

/** KV-cache bytes one token adds: 2 (K and V) · layers · kv_heads · head_dim · bytes per element. */
export function kvBytesPerToken(m: ModelFacts, bytesPerElem: number): number {
  return 2 * m.layers * m.nKvHeads * m.headDim * bytesPerElem;
}

export function weightBytes(m: ModelFacts, bytesPerParam: number): number {
  return m.params * bytesPerParam;
}
