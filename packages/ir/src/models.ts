/**
 * Architecture facts of the models the IR knows. The Llama 3 rows copy
 * the paper's reference models.json (Llama 3 public architecture facts); `tiny-llama` is a small demo model (llama2.c "stories15M" shape).
 */
export interface ModelConfig {
  readonly id: string;
  readonly params: number;
  readonly layers: number;
  readonly dModel: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly ffnDim: number;
  readonly vocab: number;
  /** Bytes per weight (FP16 = 2, FP8 = 1). */
  readonly bytesPerParam: number;
  /** Bytes per KV-cache element. */
  readonly kvBytesPerElem: number;
}

const MODELS: readonly ModelConfig[] = [
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
    bytesPerParam: 2,
    kvBytesPerElem: 2,
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
    bytesPerParam: 2,
    kvBytesPerElem: 2,
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
    bytesPerParam: 2,
    kvBytesPerElem: 2,
  },
];

export function modelIds(): string[] {
  return MODELS.map((m) => m.id);
}

export function findModel(id: string): ModelConfig | undefined {
  return MODELS.find((m) => m.id === id);
}

/** KV-cache bytes one token adds: 2 (K and V) · layers · kv_heads · head_dim · bytes per element. */
export function kvBytesPerToken(m: ModelConfig): number {
  return 2 * m.layers * m.nKvHeads * m.headDim * m.kvBytesPerElem;
}

export function weightBytes(m: ModelConfig): number {
  return m.params * m.bytesPerParam;
}
