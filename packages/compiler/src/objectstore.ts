import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ObjectStore } from '@nats-io/obj';
import type { Artifact, KernelManifest } from './artifact.js';
import { assertContentHash, CONTENT_HASH, defaultCacheDir, sha256, storeArtifact } from './artifact.js';
import { ArtifactIntegrity, ArtifactNotFound, ArtifactUntrusted } from './errors.js';
import { signingKeyObject, signManifest, trustedKeyObjects, verifyManifest } from './signing.js';

export interface PublishOptions {
  /**
   * ed25519 private key (PEM text or a `KeyObject`) that signs the manifest; written as `<hash>.sig`.
   * See `generatePublisherKey()`.
   */
  signingKey?: string | KeyObject;
  /**
   * Publish without a signature (and delete a stale `<hash>.sig`): only nodes fetching with
   * `allowUnsigned: true` will take it. Without this or `signingKey`, publish throws `ArtifactUntrusted`.
   */
  allowUnsigned?: boolean;
}

export interface FetchOptions {
  /**
   * ed25519 public keys (PEM text or `KeyObject`s) of the publishers this node trusts: the artifact's
   * `<hash>.sig` must verify against one of them. Required unless `allowUnsigned: true`.
   */
  trustedKeys?: readonly (string | KeyObject)[];
  /**
   * Skip the signature check. Only where every writer of the object store is trusted: whoever can
   * write it can then run code on this node. Not combinable with `trustedKeys`.
   */
  allowUnsigned?: boolean;
  /** @default $STITCH_KERNEL_CACHE, then ~/.cache/stitch/kernels */
  cacheDir?: string;
}

/** A manifest is a few KiB; refuse to download more than this for one. */
export const MAX_MANIFEST_BYTES = 1 << 20;
const MAX_SIGNATURE_BYTES = 4096;

/**
 * Puts `<hash>.so`, `<hash>.json` and (signed with `options.signingKey`) `<hash>.sig` into a
 * JetStream object store (the caller owns the connection). Checks the shared object against the
 * manifest first, so a corrupted local file is never signed.
 */
export async function publishArtifact(
  store: ObjectStore,
  artifact: Artifact,
  options: PublishOptions = {},
): Promise<void> {
  const { manifest } = artifact;
  assertContentHash(manifest.hash, 'publishArtifact: artifact.manifest.hash');
  const { hash } = manifest;
  if (!options.signingKey && options.allowUnsigned !== true) {
    throw new ArtifactUntrusted(
      'publishArtifact: pass { signingKey } (generatePublisherKey().privateKey) so that nodes fetching ' +
        'with trustedKeys accept the artifact, or { allowUnsigned: true } to publish it unsigned',
    );
  }
  const key = options.signingKey ? signingKeyObject(options.signingKey) : null;
  const so = new Uint8Array(await readFile(artifact.soPath));
  if (sha256(so) !== manifest.soSha256) {
    throw new ArtifactIntegrity(
      `artifact ${hash}: ${artifact.soPath} does not match the manifest SHA-256, so it is not published`,
    );
  }
  const signature = key ? signManifest(manifest, key) : null;
  await store.putBlob({ name: `${hash}.so` }, so);
  await store.putBlob({ name: `${hash}.json` }, new TextEncoder().encode(JSON.stringify(manifest)));
  if (signature) {
    await store.putBlob({ name: `${hash}.sig` }, new TextEncoder().encode(JSON.stringify(signature)));
  } else {
    await store.delete(`${hash}.sig`);
  }
}

/**
 * Fetches an artifact by content hash into the local cache. In order: checks that `hash` is 64 hex
 * characters (before touching the store or the disk) and the trust options; fetches `<hash>.json`,
 * checks that it describes `hash` and (unless `allowUnsigned`) that `<hash>.sig` verifies against
 * one of `trustedKeys`; only then fetches `<hash>.so` (at most the manifest's `soBytes`) and checks it
 * against the manifest's SHA-256. Throws `ArtifactUntrusted`, `ArtifactNotFound` or `ArtifactIntegrity`.
 */
export async function fetchArtifact(
  store: ObjectStore,
  hash: string,
  options: FetchOptions = {},
): Promise<Artifact> {
  assertContentHash(hash, 'fetchArtifact: the requested hash');
  if (typeof options !== 'object' || options === null) {
    throw new ArtifactUntrusted(
      'fetchArtifact: the third argument is an options object { trustedKeys, cacheDir } (it used to be cacheDir)',
    );
  }
  const trusted = trustPolicy(options);
  const cacheDir = options.cacheDir ?? defaultCacheDir();

  const manifestBytes = await getBounded(store, `${hash}.json`, MAX_MANIFEST_BYTES);
  if (!manifestBytes) throw new ArtifactNotFound(hash);
  let manifest: KernelManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as KernelManifest;
  } catch (cause) {
    throw new ArtifactIntegrity(`artifact ${hash}: its manifest in the object store is not valid JSON`, {
      cause,
    });
  }
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new ArtifactIntegrity(`artifact ${hash}: its manifest in the object store is not a JSON object`);
  }
  if (manifest.hash !== hash) {
    const other = typeof manifest.hash === 'string' ? JSON.stringify(manifest.hash.slice(0, 80)) : 'none';
    throw new ArtifactUntrusted(
      `artifact ${hash}: the object store's ${hash}.json describes artifact ${other}, not the one requested; ` +
        'republish it from the publisher',
    );
  }
  if (trusted) verifyManifest(manifest, await getBounded(store, `${hash}.sig`, MAX_SIGNATURE_BYTES), trusted);
  checkManifest(manifest);

  const so = await getBounded(store, `${hash}.so`, manifest.soBytes, true);
  if (!so) throw new ArtifactNotFound(hash);
  return storeArtifact(cacheDir, manifest, so);
}

/** The parsed trusted keys, or null for `allowUnsigned`; throws `ArtifactUntrusted` for neither or both. */
function trustPolicy(options: FetchOptions): KeyObject[] | null {
  const { trustedKeys, allowUnsigned } = options;
  const hasKeys = trustedKeys !== undefined;
  if (allowUnsigned === true && hasKeys) {
    throw new ArtifactUntrusted(
      'fetchArtifact: pass either options.trustedKeys or options.allowUnsigned: true, not both',
    );
  }
  if (allowUnsigned === true) return null;
  if (!Array.isArray(trustedKeys) || trustedKeys.length === 0) {
    throw new ArtifactUntrusted(
      "fetchArtifact: options.trustedKeys must list the publishers' ed25519 public keys " +
        '(generatePublisherKey().publicKey on the publishing node); only where every writer of the ' +
        'object store is trusted, pass { allowUnsigned: true } instead',
    );
  }
  return trustedKeyObjects(trustedKeys);
}

/** The fields a node uses from a manifest before running it: malformed ones are `ArtifactIntegrity`. */
function checkManifest(manifest: KernelManifest): void {
  const bad = (field: string) =>
    new ArtifactIntegrity(`artifact ${manifest.hash}: its manifest has a malformed ${field}`);
  if (typeof manifest.soSha256 !== 'string' || !CONTENT_HASH.test(manifest.soSha256)) throw bad('soSha256');
  if (!Number.isSafeInteger(manifest.soBytes) || manifest.soBytes <= 0) throw bad('soBytes');
  const entry = Array.isArray(manifest.entryPoints) ? manifest.entryPoints[0] : undefined;
  if (!entry || typeof entry.symbol !== 'string' || !Array.isArray(entry.args)) throw bad('entryPoints');
  if (manifest.spec === null || typeof manifest.spec !== 'object') throw bad('spec');
}

/**
 * An object's bytes, or null when it is absent or deleted. Refuses (ArtifactIntegrity) links and
 * objects larger than `max` (or of another size than `max` when `exact`) before downloading them, and
 * stops reading one whose chunks run past its stated size: nats.js buffers every chunk message on the
 * object's subject whatever its metadata says, and checks the digest only at the end.
 */
export async function getBounded(
  store: ObjectStore,
  name: string,
  max: number,
  exact = false,
): Promise<Uint8Array | null> {
  const r = await store.get(name);
  if (!r) return null;
  // Read to its end or cancelled below, the download settles `error` either way; nothing awaits it early.
  const failed = r.error.then(
    (err) => err,
    (err: unknown) => err,
  );
  const refuse = async (why: string) => {
    await r.data.cancel().catch(() => undefined);
    return new ArtifactIntegrity(`${name} in the object store ${why}`);
  };
  // get() follows a link and answers with the object it names.
  if (r.info.name !== name || r.info.options?.link)
    throw await refuse('is a link; kernel artifacts are plain objects');
  if (exact ? r.info.size !== max : r.info.size > max)
    throw await refuse(`is ${r.info.size} bytes, ${exact ? 'not the manifest’s' : 'more than'} ${max}`);
  const reader = r.data.getReader();
  const parts: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > r.info.size) {
      await reader.cancel().catch(() => undefined);
      throw new ArtifactIntegrity(
        `${name} in the object store has more bytes than its ${r.info.size} (its chunks were added to)`,
      );
    }
    parts.push(value);
  }
  const err = await failed;
  if (err) throw err;
  if (length !== r.info.size)
    throw new ArtifactIntegrity(`${name} in the object store changed size while it was fetched`);
  return Buffer.concat(parts);
}
