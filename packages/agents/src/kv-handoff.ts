import type { KvCache } from './decode-batcher.js';
import { withKvCache } from './memory.js';

/**
 * The KV cache prefill hands to decode travels through the cluster's KV-cache bucket (JetStream KV),
 * not through the request's context: the caller never carries it, replies stay small enough to be
 * recorded for retries, and decode's node reads it once and purges it.
 */

/** What flows in the context instead of the cache: where it is and how large. */
export interface KvRef {
  key: string;
  bytes: number;
}

/** Caches above this stay with prefill (one KV value must fit the server's max_payload): decode prefills itself. */
const MAX_KV_BYTES = 900 * 1024;
const MAGIC = 0x3156_4b53; // "SKV1" little-endian
const RID = /^[A-Za-z0-9_-]{1,128}$/;

/** What of an op's configuration says where its deployment's caches go. */
type Where = { deployment: string; natsUrl: string; cluster: string };

const keyPrefix = (cfg: Where) => `${cfg.deployment}.kvcache.`;

export function encodeKv(kv: KvCache): Uint8Array {
  const out = new Uint8Array(12 + 4 * (kv.k.length + kv.v.length));
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, kv.position, true);
  view.setUint32(8, kv.k.length, true);
  out.set(new Uint8Array(kv.k.buffer, kv.k.byteOffset, kv.k.byteLength), 12);
  out.set(new Uint8Array(kv.v.buffer, kv.v.byteOffset, kv.v.byteLength), 12 + kv.k.byteLength);
  return out;
}

/** The cache in `bytes`, or undefined when they are not one (Llama.importKv checks its shape). */
export function decodeKv(bytes: Uint8Array): KvCache | undefined {
  if (bytes.length < 12) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(8, true);
  if (view.getUint32(0, true) !== MAGIC || bytes.length !== 12 + 8 * n) return undefined;
  // A copy (Buffer#slice would be a view of a pooled buffer), aligned for the floats.
  const floats = new Float32Array(Uint8Array.prototype.slice.call(bytes, 12).buffer);
  return { position: view.getUint32(4, true), k: floats.subarray(0, n), v: floats.subarray(n) };
}

/** Stores request `rid`'s cache for decode; undefined when it is too large, the id unusable as a key, or the bucket unreachable. */
export async function storeKv(cfg: Where, rid: string, kv: KvCache): Promise<KvRef | undefined> {
  const bytes = encodeKv(kv);
  if (bytes.length > MAX_KV_BYTES || !RID.test(rid)) return undefined;
  const key = `${keyPrefix(cfg)}${rid}`;
  try {
    await withKvCache(cfg.natsUrl, cfg.cluster, (bucket) => bucket.put(key, bytes));
  } catch {
    // No bucket to hand it through (no server, no permission): decode prefills the prompt itself,
    // which gives the same tokens, only later.
    return undefined;
  }
  return { key, bytes: bytes.length };
}

/**
 * The cache a reference names, read once and purged; undefined when the reference is not one of this
 * deployment's, or the cache is gone or unreadable (decode then prefills the prompt itself).
 */
export async function fetchKv(cfg: Where, ref: unknown): Promise<KvCache | undefined> {
  const key = (ref as Partial<KvRef> | null)?.key;
  if (
    typeof key !== 'string' ||
    !key.startsWith(keyPrefix(cfg)) ||
    !RID.test(key.slice(keyPrefix(cfg).length))
  )
    return undefined;
  return withKvCache(cfg.natsUrl, cfg.cluster, async (bucket) => {
    const e = await bucket.get(key);
    if (e?.operation !== 'PUT') return undefined;
    await bucket.purge(key).catch(() => undefined);
    return decodeKv(e.value);
  });
}
