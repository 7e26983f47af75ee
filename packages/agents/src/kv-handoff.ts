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

/** One value of the bucket: a part of a cache (a value must fit the server's max_payload). */
const PART_BYTES = 900 * 1024;
/** Caches above this stay with prefill: decode prefills the prompt itself. */
const MAX_KV_BYTES = 64 * PART_BYTES;
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

/**
 * Stores request `rid`'s cache for decode, in parts of at most PART_BYTES (`<key>.<i>`); undefined
 * when it is too large, the id unusable as a key, or the bucket unreachable.
 */
export async function storeKv(cfg: Where, rid: string, kv: KvCache): Promise<KvRef | undefined> {
  const bytes = encodeKv(kv);
  if (bytes.length > MAX_KV_BYTES || !RID.test(rid)) return undefined;
  const key = `${keyPrefix(cfg)}${rid}`;
  try {
    await withKvCache(cfg.natsUrl, cfg.cluster, async (bucket) => {
      for (let i = 0, at = 0; at < bytes.length; i++, at += PART_BYTES)
        await bucket.put(`${key}.${i}`, bytes.subarray(at, at + PART_BYTES));
    });
  } catch {
    // No bucket to hand it through (no server, no permission): decode prefills the prompt itself,
    // which gives the same tokens, only later.
    return undefined;
  }
  return { key, bytes: bytes.length };
}

/**
 * The cache a reference names, read once and purged; undefined when the reference is not one of this
 * deployment's, or the cache is gone, incomplete or unreadable (decode then prefills the prompt itself).
 */
export async function fetchKv(cfg: Where, ref: unknown): Promise<KvCache | undefined> {
  const r = ref as Partial<KvRef> | null;
  const key = r?.key;
  const size = r?.bytes;
  if (
    typeof key !== 'string' ||
    !key.startsWith(keyPrefix(cfg)) ||
    !RID.test(key.slice(keyPrefix(cfg).length)) ||
    !Number.isInteger(size) ||
    (size as number) < 12 ||
    (size as number) > MAX_KV_BYTES
  )
    return undefined;
  const parts = Math.ceil((size as number) / PART_BYTES);
  return withKvCache(cfg.natsUrl, cfg.cluster, async (bucket) => {
    const bytes = new Uint8Array(size as number);
    let complete = true;
    for (let i = 0; i < parts; i++) {
      const e = await bucket.get(`${key}.${i}`);
      const want = Math.min(PART_BYTES, (size as number) - i * PART_BYTES);
      if (e?.operation !== 'PUT' || e.value.length !== want) complete = false;
      else bytes.set(e.value, i * PART_BYTES);
      await bucket.purge(`${key}.${i}`).catch(() => undefined);
    }
    return complete ? decodeKv(bytes) : undefined;
  });
}
